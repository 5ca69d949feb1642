"""The full set of config keys and their defaults (docs/method.md says what each selects).

Every file in configs/ starts from `base_config()` and overrides what differs,
so every config has every key and `--config.key=value` on an unknown key fails
(ml_collections refuses keys that do not exist). Configs are data: nothing here
reads the environment.
"""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.mode = "train"                     # train | eval
  c.seed = 0
  c.num_epochs = 81
  c.steps_per_epoch = 0                # 0 = number of visible train images / (P*K)
  c.log_every_steps = 50
  c.checkpoint_every_epochs = 1
  c.keep_checkpoints = 2

  c.data = ml_collections.ConfigDict()
  c.data.name = "sysu"                 # sysu | regdb | synthetic | fake
  c.data.root = ""
  c.data.trial = 1                     # RegDB split 1..10
  c.data.image_size = (288, 144)       # (height, width)
  c.data.pad = 10                      # pad-and-random-crop
  c.data.flip = True
  c.data.random_erasing = 0.5          # probability; 0 disables
  c.data.channel_augment = 0.5         # probability of channel exchange/grayscale on visible
  c.data.synthetic_num_ids = 40        # synthetic generator, when data.name=synthetic
  c.data.synthetic_layout = "sysu"
  c.data.num_parallel_calls = -1       # tf.data AUTOTUNE
  c.data.cache_decoded = False         # keep decoded, resized uint8 images in memory
  c.data.fake_num_classes = 395        # classes of data.name=fake (SYSU-MM01 has 395)

  c.batch = ml_collections.ConfigDict()
  c.batch.identities = 8               # P
  c.batch.instances = 4                # K images per modality per identity

  c.model = ml_collections.ConfigDict()
  c.model.depth = 50                   # 18 | 34 | 50
  c.model.last_stride = 1
  c.model.pretrained = ""              # path to a torchvision ResNet checkpoint
  c.model.dtype = "bfloat16"           # compute dtype; parameters stay float32; float16
                                       # (GPUs without bfloat16) adds dynamic loss scaling
  c.model.two_stream = True            # modality-specific stems
  c.model.gem_p = 3.0
  c.model.gem_learnable = False
  c.model.intra_branches = True        # intra-modality enhancing module
  c.model.branch = "layer4"            # layer4 | head
  c.model.branch_head_dim = 1024       # width of the light `head` branch
  c.model.retrieval_feature = "shared"  # shared | concat
  # BatchNorm statistics over the global batch (True: any device count gives the same
  # numbers), or per device (False: PyTorch DDP without SyncBatchNorm; no cross-device
  # reductions in the forward pass, the paper's statistics at its per-GPU batch).
  c.model.sync_batchnorm = True

  c.loss = ml_collections.ConfigDict()
  c.loss.label_smoothing = 0.0
  c.loss.triplet = "wrt"               # wrt (weighted regularised) | hard (batch-hard)
  c.loss.margin = 0.3                  # batch-hard triplet margin
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
  c.eval.flip = False                  # horizontal-flip averaging
  c.eval.dtype = "bfloat16"
  c.eval.rerank = False
  c.eval.gallery_rule = "baseline"     # baseline (random.seed) | official (rand_perm_cam.mat)
  c.eval.rand_perm_cam = ""            # path to rand_perm_cam.mat for the official rule
  c.eval.checkpoint = "best"           # best | latest | a step number
  c.eval.max_rank = 20
  c.eval.rank_list_images = 4          # queries in the rank-list image of each evaluation; 0 = off

  c.profile_steps = 0                  # >0: capture a profile of this many steps
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


def validate(config: ml_collections.ConfigDict, num_classes: int | None = None,
             num_devices: int = 1, num_hosts: int = 1) -> None:
  """Refuses configs that cannot work, up front, saying what to change."""
  errors = []

  def need(cond, msg):
    if not cond:
      errors.append(msg)

  need(config.mode in ("train", "eval"), f"mode={config.mode!r}: use train or eval.")
  need(config.data.name in ("sysu", "regdb", "synthetic", "fake"),
       f"data.name={config.data.name!r}: use sysu, regdb, synthetic or fake.")
  need(len(tuple(config.data.image_size)) == 2 and min(config.data.image_size) >= 32,
       f"data.image_size={tuple(config.data.image_size)}: give (height, width), each >= 32.")
  need(1 <= int(config.data.trial) <= 10, f"data.trial={config.data.trial}: RegDB trials are 1..10.")
  p, k = int(config.batch.identities), int(config.batch.instances)
  need(p >= 2 and k >= 1, f"batch.identities={p}, batch.instances={k}: need P >= 2 "
       "(the triplet loss needs negatives) and K >= 1.")
  if num_classes is not None:
    need(p <= num_classes, f"batch.identities={p} is larger than the {num_classes} training "
         f"identities: set --config.batch.identities to at most {num_classes}.")
  need((p * k) % max(1, num_devices) == 0,
       f"P*K = {p}*{k} = {p * k} images per modality is not divisible by the {num_devices} "
       "devices: change batch.identities or batch.instances.")
  need(p % max(1, num_hosts) == 0, f"batch.identities={p} is not divisible by the {num_hosts} "
       "hosts (each host draws its own identities).")
  need(config.model.depth in (18, 34, 50), f"model.depth={config.model.depth}: use 18, 34 or 50.")
  need(config.model.branch in ("layer4", "head"), f"model.branch={config.model.branch!r}: layer4 or head.")
  need(config.model.retrieval_feature in ("shared", "concat"),
       f"model.retrieval_feature={config.model.retrieval_feature!r}: shared or concat.")
  need(not (config.model.retrieval_feature == "concat" and not config.model.intra_branches),
       "model.retrieval_feature=concat needs model.intra_branches=True.")
  need(config.model.dtype in ("float32", "bfloat16", "float16"), f"model.dtype={config.model.dtype!r}.")
  need(config.loss.triplet in ("wrt", "hard"), f"loss.triplet={config.loss.triplet!r}: wrt or hard.")
  need(config.loss.dist_level in ("identity", "batch"), f"loss.dist_level={config.loss.dist_level!r}.")
  need(config.loss.dist_divergence in ("sym_kl", "w2"), f"loss.dist_divergence={config.loss.dist_divergence!r}.")
  need(config.loss.dist_normalize in ("l2", "none"), f"loss.dist_normalize={config.loss.dist_normalize!r}.")
  need(int(config.num_epochs) >= 1, f"num_epochs={config.num_epochs}: must be >= 1.")
  decay = tuple(int(e) for e in config.optim.decay_epochs)
  need(list(decay) == sorted(decay), f"optim.decay_epochs={decay} must be increasing.")
  need(all(e >= int(config.optim.warmup_epochs) for e in decay),
       f"optim.decay_epochs={decay} start before the warm-up ends (optim.warmup_epochs="
       f"{config.optim.warmup_epochs}): the schedule would decay before it starts.")
  need(config.optim.name in ("sgd", "adam"), f"optim.name={config.optim.name!r}: sgd or adam.")
  need(config.optim.lr_new > 0 and config.optim.lr_pretrained >= 0, "learning rates must be positive.")
  need(config.eval.gallery_rule in ("baseline", "official"), f"eval.gallery_rule={config.eval.gallery_rule!r}.")
  need(not (config.eval.gallery_rule == "official" and not config.eval.rand_perm_cam),
       "eval.gallery_rule=official needs eval.rand_perm_cam=/path/to/rand_perm_cam.mat.")
  need(config.eval.batch_size % max(1, num_devices) == 0,
       f"eval.batch_size={config.eval.batch_size} must be a multiple of the {num_devices} devices.")
  need(int(config.eval.trials) >= 1, "eval.trials must be >= 1.")
  need(int(config.eval.rank_list_images) >= 0, "eval.rank_list_images must be >= 0 (0 = off).")
  if errors:
    raise ValueError("Invalid config:\n  - " + "\n  - ".join(errors))
