"""The full set of config keys and their defaults (docs/method.md says what each selects).

Every file in configs/ starts from `base_config()` and overrides what differs,
so every config has every key and `--config.key=value` on an unknown key fails
(ml_collections refuses keys that do not exist). Configs are data: nothing here
reads the environment.
"""

from __future__ import annotations

import ml_collections

from vireid_jax.errors import ConfigError


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.mode = "train"                     # train | eval
  c.seed = 0
  c.num_epochs = 81
  c.steps_per_epoch = 0                # 0 = AGW's rule: max(#visible, #infrared) // (P*K) + 1
  c.log_every_steps = 50
  c.checkpoint_every_epochs = 1
  c.keep_checkpoints = 2

  c.data = ml_collections.ConfigDict()
  c.data.name = "sysu"                 # a dataset of vireid_jax/data/registry.py | synthetic | fake
  c.data.root = ""
  c.data.source = "files"              # files (read data.root) | tfds (records prepared once
                                       # by `python -m vireid_jax.data.prepare_tfds`)
  c.data.tfds_dir = ""                 # data_dir the TFDS records were prepared into (source=tfds)
  c.data.trial = 1                     # the numbered train/test split, for datasets with
                                       # several (RegDB: 1..10)
  c.data.image_size = (288, 144)       # (height, width); configs use their dataset's size
  c.data.pad = 10                      # pad-and-random-crop
  c.data.flip = True
  # Augmentations beyond pad/crop/flip (AGW uses none of them; CAJ all three; see
  # vireid_jax/data/channel_augment.py, applied on the device to normalised images):
  c.data.random_erasing = 0.0          # CAJ's ChannelRandomErasing probability, every image; 0 off
  c.data.channel_augment = 0.0         # CAJ's ChannelAdapGray(p) on infrared images; 0 off
  c.data.channel_exchange_view = False  # CAJ's extra channel-exchanged view of each visible image
  c.data.synthetic_num_ids = 40        # synthetic generator, when data.name=synthetic
  c.data.synthetic_layout = "sysu"     # the dataset whose layout and protocol it has
  c.data.num_parallel_calls = -1       # tf.data AUTOTUNE
  c.data.cache_decoded = False         # keep decoded, resized uint8 images in memory
  # Batches fetched and put on the devices ahead of the step by a background thread, this
  # many ahead (for hosts too slow to feed the GPU from the loop's own thread; not yet
  # measured on a GPU); 0: one ahead, made by the loop between steps.
  c.data.device_prefetch = 0
  c.data.fake_num_classes = 395        # classes of data.name=fake (SYSU-MM01 has 395)

  c.batch = ml_collections.ConfigDict()
  c.batch.identities = 8               # P
  c.batch.instances = 4                # K images per modality per identity

  c.model = ml_collections.ConfigDict()
  c.model.depth = 50                   # 18 | 34 | 50 (10: one block per stage, from scratch)
  c.model.last_stride = 1
  # Path to a torchvision ImageNet ResNet checkpoint (.pth or converted .npz), or "none" to
  # train from scratch on purpose; left empty, training is refused (validate).
  c.model.pretrained = ""
  c.model.dtype = "bfloat16"           # compute dtype; parameters stay float32; float16
                                       # (GPUs without bfloat16) adds dynamic loss scaling
  c.model.two_stream = True            # modality-specific stems
  c.model.gem_p = 3.0
  c.model.gem_learnable = False
  c.model.intra_branches = True        # intra-modality enhancing module
  c.model.branch = "layer4"            # layer4 | head
  c.model.branch_head_dim = 1024       # width of the light `head` branch
  c.model.retrieval_feature = "shared"  # shared | concat
  c.model.non_local = True             # AGW's non-local blocks in layer2 and layer3
  c.model.non_local_width = "reference"  # inner width: reference (AGW's code: 1) | half (C // 2)
  # BatchNorm statistics over the global batch (True: any device count gives the same
  # numbers), or per device (False: PyTorch DDP without SyncBatchNorm; no cross-device
  # reductions in the forward pass, the paper's statistics at its per-GPU batch).
  c.model.sync_batchnorm = True
  # BatchNorm + residual + ReLU in training as one op with a hand-written backward pass
  # (models/fused_batchnorm.py): "" = plain autodiff, "xla" = its reductions as XLA fusions,
  # "pallas" = as Pallas kernels on one GPU ("xla" elsewhere). Same numbers up to rounding;
  # slower than plain autodiff on an H200 today (BENCHMARKS.md), hence off.
  c.model.fused_bn = ""

  c.loss = ml_collections.ConfigDict()
  c.loss.label_smoothing = 0.0
  c.loss.triplet = "wrt"               # wrt (AGW, weighted regularised) | hard | adp (CAJ)
  c.loss.margin = 0.3                  # batch-hard triplet margin
  c.loss.adp_alpha = 1.0               # adp: scale of the distances inside the soft weights
  c.loss.adp_gamma = 1.0               # adp: scale of the (squared) difference
  c.loss.adp_square = True             # adp: squared difference with a sign target (CAJ --square 1)
  c.loss.w_id = 1.0
  c.loss.w_tri = 1.0
  c.loss.w_intra = 0.5                 # weight of the intra-modality branch losses
  c.loss.w_dist = 0.1                  # weight of the distribution consistency loss
  c.loss.dist_level = "identity"       # identity | batch
  c.loss.dist_divergence = "sym_kl"    # sym_kl | w2
  c.loss.dist_normalize = "l2"         # l2 | none: feature normalisation inside Dist
  c.loss.dist_var_floor = 1e-6

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "sgd"                 # sgd (Nesterov momentum) | adam
  c.optim.lr_new = 0.1                 # BNNecks, classifiers, branch heads
  c.optim.lr_pretrained = 0.01         # ImageNet-initialised layers
  c.optim.momentum = 0.9
  c.optim.nesterov = True
  c.optim.weight_decay = 5e-4
  c.optim.warmup_epochs = 10
  c.optim.decay_epochs = (20, 50)
  c.optim.decay_factor = 0.1
  c.optim.grad_clip_norm = 0.0         # 0 disables
  c.optim.skip_nonfinite = False       # skip steps with NaN/Inf instead of stopping

  c.eval = ml_collections.ConfigDict()
  c.eval.every_epochs = 2
  c.eval.trials = 10                   # trials in eval mode; training evals use trial 0
  c.eval.train_trials = 1
  c.eval.batch_size = 128              # per host, padded to a fixed shape
  c.eval.cache_images = True           # decode the test images once per run (uint8 in memory)
  c.eval.flip = False                  # horizontal-flip averaging
  c.eval.dtype = "bfloat16"
  c.eval.rerank = False
  c.eval.gallery_rule = "baseline"     # baseline (random.seed) | official (rand_perm_cam.mat)
  c.eval.rand_perm_cam = ""            # path to rand_perm_cam.mat for the official rule
  c.eval.checkpoint = "best"           # best | latest | a step number
  c.eval.max_rank = 20
  c.eval.rank_list_images = 4          # queries in the rank-list image of each evaluation; 0 = off
  c.eval.select_best_on = "test"       # test | val: the evaluation that picks the best checkpoint

  # Evaluations during training, comma-separated: test (the test protocols, every
  # eval.every_epochs) and val (held-out training identities, every val.every_epochs;
  # the model then trains without them).
  c.evals = "test"
  c.val = ml_collections.ConfigDict()
  c.val.every_epochs = 2
  c.val.fraction = 0.1                 # identities held out where the dataset names none
  c.val.seed = 0                       # (RegDB, LLCM); SYSU-MM01: its exp/val_id.txt

  c.profile_steps = 0                  # >0: capture a profile of this many steps
  return c


def agw_baseline(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """AGW's cross-modality baseline as `train.py --method agw --lr 0.1` runs it (every choice explicit).

  Two-stream stems, shared ResNet-50 with non-local blocks (inner width 1),
  GeM, BNNeck, CE + weighted regularised triplet; pad 10 / crop / flip only;
  SGD with AGW's groups and schedule, 81 epochs of max(#vis, #ir) // 32 + 1 steps.
  """
  c.data.image_size = (288, 144)
  c.data.pad = 10
  c.data.flip = True
  c.data.random_erasing = 0.0
  c.data.channel_augment = 0.0
  c.data.channel_exchange_view = False
  # Decode and resize every training image once (SYSU-MM01: about 4.5 GB of host memory):
  # decoding and Lanczos-resizing every batch keeps ~12 host cores busy and still feeds a
  # GPU at ~60% of its step rate (BENCHMARKS.md, "Whole job on one GPU"). Same batches.
  c.data.cache_decoded = True
  c.batch.identities, c.batch.instances = 8, 4
  c.model.depth, c.model.last_stride = 50, 1
  c.model.two_stream = True
  c.model.non_local, c.model.non_local_width = True, "reference"
  c.model.gem_p, c.model.gem_learnable = 3.0, False
  c.model.intra_branches = False
  c.model.retrieval_feature = "shared"
  c.loss.label_smoothing = 0.0
  c.loss.triplet = "wrt"
  c.loss.w_id, c.loss.w_tri, c.loss.w_intra, c.loss.w_dist = 1.0, 1.0, 0.0, 0.0
  c.optim.name = "sgd"
  c.optim.lr_new, c.optim.lr_pretrained = 0.1, 0.01
  c.optim.momentum, c.optim.nesterov, c.optim.weight_decay = 0.9, True, 5e-4
  c.optim.warmup_epochs, c.optim.decay_epochs, c.optim.decay_factor = 10, (20, 50), 0.1
  c.num_epochs = 81
  c.steps_per_epoch = 0
  c.eval.every_epochs = 2
  c.eval.flip = False
  # A save's background write slows the next steps: saving every epoch cost the AGW run 3.6%
  # of its speed on one H100, every 5 epochs costs about 0.8% (estimated; BENCHMARKS.md,
  # "Whole job on one GPU"). A SIGTERM still saves at once; a hard kill loses at most 5 epochs.
  c.checkpoint_every_epochs = 5
  return c


def method_modules(c: ml_collections.ConfigDict, intra: bool = True,
                   dist: bool = True) -> ml_collections.ConfigDict:
  """The paper's modules on a recipe: intra-modality branches and/or the distribution loss.

  Weights and branch settings are `base_config`'s; the rest of `c` is untouched,
  so `method_modules(agw_baseline(c))` differs from the AGW baseline only by them.
  """
  base = base_config()
  c.model.intra_branches = bool(intra)
  c.loss.w_intra = base.loss.w_intra if intra else 0.0
  c.loss.w_dist = base.loss.w_dist if dist else 0.0
  return c


def caj_baseline(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CAJ (ICCV 2021) as `ICCV21_CAJ/train_ext.py --method adp --augc 1 --rande 0.5 --alpha 1
  --square 1 --gamma 1 --lr 0.1` runs it: AGW's network and optimiser, plus CAJ's three
  channel augmentations, the squared adaptive triplet, 100 epochs; tested with flip averaging
  (its `testa.py`)."""
  agw_baseline(c)
  c.data.random_erasing = 0.5          # ChannelRandomErasing(0.5) on all three views
  c.data.channel_augment = 0.5         # ChannelAdapGray(0.5) on infrared images
  c.data.channel_exchange_view = True  # + ChannelExchange view of every visible image
  c.loss.triplet = "adp"
  c.loss.adp_alpha, c.loss.adp_gamma, c.loss.adp_square = 1.0, 1.0, True
  c.num_epochs = 100
  c.eval.flip = True
  return c


def synthetic_demo(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The CPU demo settings (configs/synthetic.py): synthetic data, a small ResNet-18."""
  c.data.name = "synthetic"
  c.data.synthetic_layout = "sysu"
  c.data.synthetic_num_ids = 40
  c.data.image_size = (96, 48)        # small enough for a 2-core CPU
  c.data.pad = 4
  c.data.cache_decoded = True
  c.batch.identities = 8
  c.batch.instances = 4
  c.model.depth = 18
  c.model.dtype = "float32"            # bfloat16 is slow on CPUs without native support
  c.model.branch = "head"
  c.model.branch_head_dim = 256
  c.model.two_stream = False           # one shared stem: aligns faster from scratch
  c.model.pretrained = "none"          # from scratch: no ImageNet weights for this model
  c.model.non_local = False            # the plain ResNet-18
  c.data.random_erasing = 0.5
  c.data.channel_augment = 0.5
  c.num_epochs = 15
  c.steps_per_epoch = 20
  c.log_every_steps = 20
  # No ImageNet weights: the backbone learns from scratch, where Adam beats SGD
  # within 300 steps (benchmarks/demo_sweep.py; BENCHMARKS.md, "CPU demo settings").
  c.optim.name = "adam"
  c.optim.lr_pretrained = 1e-3
  c.optim.lr_new = 1e-3
  c.optim.warmup_epochs = 2
  c.optim.decay_epochs = (10, 14)
  c.eval.every_epochs = 5
  c.eval.trials = 10
  c.eval.batch_size = 64
  c.eval.dtype = "float32"
  return c


# Allowed values of the keys that take one of a few names.
CHOICES = {
    "mode": ("train", "eval"),
    "data.source": ("files", "tfds"),
    "model.depth": (10, 18, 34, 50),
    "model.branch": ("layer4", "head"),
    "model.retrieval_feature": ("shared", "concat"),
    "model.dtype": ("float32", "bfloat16", "float16"),
    "model.fused_bn": ("", "xla", "pallas"),
    "model.non_local_width": ("reference", "half"),
    "loss.triplet": ("wrt", "hard", "adp"),
    "loss.dist_level": ("identity", "batch"),
    "loss.dist_divergence": ("sym_kl", "w2"),
    "loss.dist_normalize": ("l2", "none"),
    "optim.name": ("sgd", "adam"),
    "eval.dtype": ("float32", "bfloat16", "float16"),
    "eval.gallery_rule": ("baseline", "official"),
    "eval.select_best_on": ("test", "val"),
}
# The evaluations `evals` may name (`training.periodic_eval` builds them).
EVALUATIONS = ("test", "val")
WHERE_KEYS_ARE = "vireid_jax/config_defaults.py"


def get_key(config: ml_collections.ConfigDict, dotted: str):
  """config["a"]["b"] for "a.b"."""
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


# `model.pretrained` value that asks for training from scratch.
NO_PRETRAINED = "none"


def missing_pretrained_message(depth: int) -> str:
  """What to do when `model.pretrained` is unset (after "model.pretrained='': ")."""
  depth = int(depth)
  files = ("resnet50-19c8e357.pth (torchvision >= 0.13 calls its IMAGENET1K_V1 file "
           "resnet50-0676ba61.pth)" if depth == 50 else f"resnet{depth}-*.pth")
  return (
      f"not set. AGW and CAJ start every ResNet copy from torchvision's ImageNet "
      f"ResNet-{depth}: download {files} from https://download.pytorch.org/models/ on a "
      f"machine with internet access, convert it once with `python -m "
      f"vireid_jax.models.pretrained --in FILE.pth --out resnet{depth}.npz` and pass "
      f"--config.model.pretrained=/path/to/resnet{depth}.npz (a .pth works too where torch is "
      f"installed). To train from scratch on purpose, pass "
      f"--config.model.pretrained={NO_PRETRAINED}.")


def validate(config: ml_collections.ConfigDict, num_classes: int | None = None,
             num_devices: int = 1, num_hosts: int = 1, extra_problems=()) -> None:
  """Refuses configs that cannot work, up front, one line per bad key.

  Called twice: before anything is read (num_classes=None: every check that
  needs only the config) and again once the training identities are counted.
  What depends on the dataset (`data.name`, its splits, its gallery rules) is
  checked by `vireid_jax.data.datasets.validate`, which passes its lines in
  `extra_problems` so that every problem is reported at once.

  Raises:
    ConfigError: naming each bad key, its value and what is allowed.
  """
  errors = []

  def need(cond, key, what):
    if not cond:
      errors.append(f"{key}={get_key(config, key)!r}: {what}")

  for key, allowed in CHOICES.items():
    need(get_key(config, key) in allowed, key,
         "use one of " + ", ".join(repr(a) for a in allowed) + ".")
  size = config.data.image_size
  need(isinstance(size, (tuple, list)) and len(size) == 2
       and all(isinstance(s, int) and s >= 32 for s in size), "data.image_size",
       "give (height, width), two integers >= 32, e.g. --config.data.image_size='(288, 144)'.")
  need(int(config.data.trial) >= 1, "data.trial", "splits are numbered from 1.")
  need(int(config.data.device_prefetch) >= 0, "data.device_prefetch",
       "must be >= 0 (0: batches made by the loop's own thread).")
  need(int(config.data.synthetic_num_ids) >= 4, "data.synthetic_num_ids", "use at least 4.")
  need(config.data.source != "tfds" or config.data.name == "fake" or bool(config.data.tfds_dir),
       "data.tfds_dir", "data.source=tfds needs the folder the records were prepared into "
       "with `python -m vireid_jax.data.prepare_tfds` (--config.data.tfds_dir=DIR).")
  p, k = int(config.batch.identities), int(config.batch.instances)
  need(p >= 2, "batch.identities", "use P >= 2 (the triplet loss needs negatives).")
  need(k >= 1, "batch.instances", "use K >= 1.")
  if num_classes is not None:
    need(p <= num_classes, "batch.identities",
         f"larger than the {num_classes} training identities: use at most {num_classes}.")
  need((p * k) % max(1, num_devices) == 0, "batch.instances",
       f"P*K = {p}*{k} = {p * k} images per modality is not divisible by the {num_devices} "
       "devices: change batch.identities or batch.instances.")
  need(p % max(1, num_hosts) == 0, "batch.identities",
       f"not divisible by the {num_hosts} hosts (each host draws its own identities).")
  need(not (config.model.retrieval_feature == "concat" and not config.model.intra_branches),
       "model.retrieval_feature", "concat needs model.intra_branches=True.")
  for key in ("data.random_erasing", "data.channel_augment"):
    need(0.0 <= float(get_key(config, key)) <= 1.0, key,
         "a probability: give a value in [0, 1] (0 disables).")
  need(not (config.mode == "train" and config.data.name != "fake" and not config.model.pretrained),
       "model.pretrained", missing_pretrained_message(config.model.depth))
  need(not (int(config.model.depth) == 10 and str(config.model.pretrained) not in ("", "none")),
       "model.depth", "10 has no ImageNet weights: train it from scratch "
       "(--config.model.pretrained=none) or use 18, 34 or 50.")
  need(int(config.num_epochs) >= 1, "num_epochs", "must be >= 1.")
  need(int(config.steps_per_epoch) >= 0, "steps_per_epoch",
       "must be >= 0 (0: derived from the training set).")
  need(int(config.log_every_steps) >= 1, "log_every_steps", "must be >= 1.")
  need(int(config.checkpoint_every_epochs) >= 1, "checkpoint_every_epochs", "must be >= 1.")
  need(int(config.keep_checkpoints) >= 1, "keep_checkpoints", "must be >= 1.")
  decay = tuple(int(e) for e in config.optim.decay_epochs)
  need(list(decay) == sorted(decay), "optim.decay_epochs", "must be increasing.")
  need(all(e >= int(config.optim.warmup_epochs) for e in decay), "optim.decay_epochs",
       f"starts before the warm-up ends (optim.warmup_epochs={config.optim.warmup_epochs}): "
       "the schedule would decay before it starts.")
  need(config.optim.lr_new > 0, "optim.lr_new", "must be > 0.")
  need(config.optim.lr_pretrained >= 0, "optim.lr_pretrained", "must be >= 0.")
  need(not (config.eval.gallery_rule == "official" and not config.eval.rand_perm_cam),
       "eval.rand_perm_cam", "eval.gallery_rule=official needs the path of the official "
       "rand_perm_cam.mat.")
  need(int(config.eval.every_epochs) >= 0, "eval.every_epochs", "must be >= 0 (0 = off).")
  need(int(config.eval.batch_size) >= 1 and config.eval.batch_size % max(1, num_devices) == 0,
       "eval.batch_size", f"must be a positive multiple of the {num_devices} devices.")
  need(int(config.eval.trials) >= 1, "eval.trials", "must be >= 1.")
  need(int(config.eval.train_trials) >= 1, "eval.train_trials", "must be >= 1.")
  need(int(config.eval.rank_list_images) >= 0, "eval.rank_list_images",
       "must be >= 0 (0 = off).")
  need(str(config.eval.checkpoint) in ("best", "latest") or str(config.eval.checkpoint).isdigit(),
       "eval.checkpoint", "use best, latest or a step number.")
  evals = evaluation_names(config)
  need(set(evals) <= set(EVALUATIONS) and len(set(evals)) == len(evals), "evals",
       f"a comma-separated list of distinct names out of {', '.join(EVALUATIONS)} (or empty).")
  need(not evals or config.eval.select_best_on in evals, "eval.select_best_on",
       f"{config.eval.select_best_on} is not among the evaluations during training "
       f"(evals={config.evals!r}): add it, e.g. --config.evals=test,val.")
  need(0.0 < float(config.val.fraction) < 1.0, "val.fraction", "a share in (0, 1).")
  need(int(config.val.every_epochs) >= 1, "val.every_epochs", "must be >= 1.")
  need("val" not in evals or config.data.name != "fake", "evals",
       "val needs a dataset (data.name=fake has no identities to hold out).")
  need(int(config.profile_steps) >= 0, "profile_steps", "must be >= 0.")
  errors.extend(extra_problems)
  if errors:
    raise ConfigError(errors)


def evaluation_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The evaluations `evals` names ("test,val" -> ("test", "val"))."""
  return tuple(n.strip() for n in str(config.evals).split(",") if n.strip())


def apply_overrides(config: ml_collections.ConfigDict, source: ml_collections.ConfigDict,
                    keys: list[str]) -> list[str]:
  """Sets each dotted key of `keys` in `config` to its value in `source`.

  Returns `KEY=VALUE` for every key whose value changed (e.g. the evaluation
  settings given on the command line over a trained run's own config).
  """
  changed = []
  for key in keys:
    value = get_key(source, key)
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    if node[leaf] != value:
      node[leaf] = value
      changed.append(f"{key}={value!r}")
  return changed
