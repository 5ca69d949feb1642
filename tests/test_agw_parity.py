"""AGW parity: our network and train step compute what AGW's PyTorch code computes, step for step.

The torch side is `benchmarks/torch_reference.py`'s `TwoStreamNet` (our own
PyTorch port of AGW's `embed_net(no_local='on', gm_pool='on')`) trained the
way AGW's `train.py` trains it: `nn.CrossEntropyLoss` + `TripletLoss_WRT` on
the pooled feature, `torch.optim.SGD` with AGW's two learning-rate groups.
One set of weights is loaded into both; on a paired batch we compare, in
float32, at 96x48 with a ResNet-50 (every non-local block in place):

  * eval-mode retrieval features of each modality and the train-mode CE and
    WRT losses: relative error <= 1e-5;
  * every gradient, and the parameters and BatchNorm statistics after three
    SGD steps in a warm-up epoch and three after warm-up: judged against a
    float64 run of the torch code. float32 rounding flips a few ReLU masks,
    so two float32 runs of the same torch code (NCHW and channels-last
    kernels) already differ from float64 by ~1e-4..1e-3 on single tensors; we
    require our whole-gradient (and whole-update) relative error <= 2e-3 and
    within a small multiple of the torch float32 runs' own.

Updates are compared as differences from the start (theta_3 - theta_0): the
parameters themselves hardly move in three steps.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax import config_defaults
from vireid_jax.losses import classification, triplet
from vireid_jax.models import pretrained, vireid
from vireid_jax.training import optimizer, train_step

torch = pytest.importorskip("torch")
F = torch.nn.functional

DEPTH, H, W = 50, 96, 48
P, K, NUM_CLASSES = 2, 2, 4
STEPS_PER_EPOCH = 3          # three steps = one epoch of the schedule
# Gradients and updates, judged against float64 torch: whole relative error <= WHOLE_TOL,
# and at most SPREAD_FACTOR x the larger error of two float32 torch runs (NCHW and
# channels-last kernels). Measured: ours 1-5x torch's own (XLA:CPU sums its
# reductions in another order; the errors themselves are ReLU masks that float32
# rounding flips).
SPREAD_FACTOR = 10.0
WHOLE_TOL = 2e-3
# Well-conditioned weights (`torch_net`).
KERNEL_GAIN = 4.0
NON_LOCAL_SCALE = 0.1
BN_SHIFT = 1.5
# The JAX side runs op by op (eager): XLA:CPU compiles a whole ResNet-50 train step in
# minutes on 2 cores; op by op, each distinct op compiles once and a step takes ~1 s.


tr = pytest.importorskip("benchmarks.torch_reference")


# ----------------------------------------------------------------------------
# One set of weights for both.

def torch_net(seed: int = 0, centred_residuals: bool = False):
  """AGW's network (ResNet-50, non-local blocks of width 1) with well-conditioned random weights.

  Random weights make float32 gradients noisy and three SGD steps chaotic unless:
    * kernels are KERNEL_GAIN x He (fan-in): every conv feeds a BatchNorm, so
      the forward pass is scale-free, and larger kernels take relatively
      smaller steps;
    * BatchNorm shifts are ~BN_SHIFT (> 0): few ReLU inputs then sit near 0,
      where float32 rounding decides the mask (and, in the stem's max-pool
      windows of zeros, where the gradient goes). With shifts ~0, two float32
      torch runs differ from float64 by ~1e-2 in the stem's gradient;
    * the non-local blocks' BN scale is small (NON_LOCAL_SCALE x U(0.5, 1)):
      AGW starts it at 0, which would leave g, theta and phi without gradient.
  `centred_residuals` keeps the BNs added into the residual stream (bn3,
  downsample, non-local) centred: the pooled features then have no large
  common component, whose cancellation in the WRT's |a|^2 + |b|^2 - 2ab would
  amplify float32 noise ~100x (for the loss-value comparison). Scales are
  U(0.5, 1); the running statistics are those of one batch.
  """
  torch.manual_seed(seed)
  net = tr.TwoStreamNet(DEPTH, NUM_CLASSES, intra=False, impl="builtin", non_local=True,
                        non_local_inner=1)
  g = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for name, m in net.named_modules():
      if isinstance(m, torch.nn.Conv2d):
        fan_in = m.weight[0].numel()
        m.weight.copy_(KERNEL_GAIN * torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
      if isinstance(m, torch.nn.BatchNorm2d):
        c = m.num_features
        residual = centred_residuals and name.endswith(("bn3", "downsample.1", "W_bn"))
        m.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
        m.bias.copy_((0.0 if residual else BN_SHIFT) + 0.1 * torch.randn(c, generator=g))
    for m in net.modules():
      if isinstance(m, tr.NonLocal):
        m.W_bn.weight.mul_(NON_LOCAL_SCALE)
  calibrate_running_statistics(net, batches(1, seed=seed + 100)[0])
  return net


def calibrate_running_statistics(net, batch) -> None:
  """Running statistics := one batch's (a train-mode pass with BN momentum 1), so eval mode
  normalises like train mode (random statistics would blow up 4x-He kernels)."""
  bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
  for m in bns:
    m.momentum = 1.0
  net.train()
  with torch.no_grad():
    net(*(torch.from_numpy(batch[k].transpose(0, 3, 1, 2).copy()) for k in ("visible", "infrared")))
  for m in bns:
    m.momentum = 0.1


# torch TwoStreamNet prefix -> (torchvision prefix, our path prefix) of each ResNet copy.
_COPIES = {"visible_stem.0.": ("conv1.", ("stem_visible",)),
           "visible_stem.1.": ("bn1.", ("stem_visible",)),
           "infrared_stem.0.": ("conv1.", ("stem_infrared",)),
           "infrared_stem.1.": ("bn1.", ("stem_infrared",)),
           "trunk.0.": ("layer1.", ("trunk",)),
           "trunk.1.blocks.": ("layer2.", ("trunk",)),
           "trunk.2.blocks.": ("layer3.", ("trunk",)),
           "layer4.": ("layer4.", ("shared",))}
_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
       "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _ours(key: str) -> tuple[str, ...] | None:
  """Our (collection, *path) of a torch TwoStreamNet key; None for keys we do not have."""
  if key.endswith("num_batches_tracked") or key == "head.bnneck.bias":   # frozen zero in AGW
    return None
  for prefix, (tv_prefix, where) in _COPIES.items():
    if key.startswith(prefix):
      coll, *path = pretrained.expected_keys(DEPTH)[tv_prefix + key[len(prefix):]][1]
      return (coll, *where, *path[1:]) if where[0].startswith("stem") else (coll, *where, *path)
  if key.startswith("trunk.") and ".non_local." in key:
    stage, _, index, module, leaf = key.split(".")[1:]
    where = ("trunk", f"layer{int(stage) + 1}", f"nonlocal{index}", module)
    if module == "W_bn":
      coll, name = _BN[leaf]
      return (coll, *where, name)
    return ("params", *where, "kernel" if leaf == "weight" else "bias")
  if key.startswith("head.bnneck."):
    coll, name = _BN[key.split(".")[-1]]
    return (coll, "shared", "bnneck", "scale" if name == "scale" else name)
  if key == "head.classifier.weight":
    return ("params", "shared", "classifier", "kernel")
  raise KeyError(f"No mapping for torch key {key}")


def to_flax(named_arrays: dict[str, np.ndarray]) -> dict:
  """torch (name -> array) -> our {"params", "batch_stats"} tree (OIHW -> HWIO, Linear transposed)."""
  out: dict = {}
  for key, value in named_arrays.items():
    path = _ours(key)
    if path is None:
      continue
    arr = np.asarray(value, np.float64)
    if arr.ndim == 4:
      arr = arr.transpose(2, 3, 1, 0)
    elif key.endswith("classifier.weight"):
      arr = arr.T
    node = out
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = arr
  return out


def state_of(net) -> dict[str, np.ndarray]:
  return {k: v.detach().cpu().double().numpy() for k, v in net.state_dict().items()}


def grads_of(net) -> dict[str, np.ndarray]:
  return {k: p.grad.detach().double().numpy() for k, p in net.named_parameters()
          if p.grad is not None}


# ----------------------------------------------------------------------------
# The two sides.

def batches(count: int, seed: int = 0):
  """Paired batches as AGW's loader gives them: P ids x K images per modality, both in one order."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    ids = rng.choice(NUM_CLASSES, P, replace=False)
    labels = np.repeat(ids, K).astype(np.int32)
    out.append({"visible": rng.normal(size=(P * K, H, W, 3)).astype(np.float32),
                "infrared": rng.normal(size=(P * K, H, W, 3)).astype(np.float32),
                "visible_labels": labels, "infrared_labels": labels})
  return out


def agw_config():
  c = config_defaults.base_config()
  c.model.depth, c.model.dtype, c.model.intra_branches = DEPTH, "float32", False
  c.model.non_local, c.model.non_local_width = True, "reference"
  c.loss.w_intra, c.loss.w_dist, c.loss.triplet = 0.0, 0.0, "wrt"
  return c


def jax_model():
  return vireid.ViReIDNet.from_config(agw_config().model, NUM_CLASSES)


class TorchAGW:
  """AGW's train.py step on a TwoStreamNet: CE + WRT, SGD with its two learning-rate groups."""

  def __init__(self, net, dtype=torch.float32, channels_last=False):
    self.net = copy.deepcopy(net).to(dtype)
    self.dtype, self.channels_last = dtype, channels_last
    if channels_last:
      self.net = self.net.to(memory_format=torch.channels_last)

  def inputs(self, batch):
    def conv(x):
      t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(self.dtype)
      return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t
    labels = torch.from_numpy(np.concatenate([batch["visible_labels"],
                                              batch["infrared_labels"]]).astype(np.int64))
    return conv(batch["visible"]), conv(batch["infrared"]), labels

  def losses(self, batch):
    self.net.train()
    vis, ir, labels = self.inputs(batch)
    f, _, logits = self.net(vis, ir)["shared"]
    return F.cross_entropy(logits, labels), tr.weighted_regularized_triplet(f, labels)

  def gradients(self, batch):
    self.net.zero_grad()
    ce, wrt = self.losses(batch)
    (ce + wrt).backward()
    return grads_of(self.net)

  def train(self, batches_, epoch, lr=0.1):
    """Steps at AGW's learning rates of `epoch` (adjust_learning_rate: warm-up, then x0.1 at 20, 50)."""
    factor = (epoch + 1) / 10 if epoch < 10 else (1.0 if epoch < 20 else 0.1 if epoch < 50 else 0.01)
    opt = torch.optim.SGD([{"params": self.net.pretrained_params(), "lr": 0.1 * lr * factor},
                           {"params": self.net.new_layer_params(), "lr": lr * factor}],
                          lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for batch in batches_:
      opt.zero_grad()
      ce, wrt = self.losses(batch)
      (ce + wrt).backward()
      opt.step()
    return state_of(self.net)

  def features(self, images, modality):
    self.net.eval()
    with torch.no_grad():
      x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.dtype)
      return self.net.embed(x, modality).double().numpy()


def jax_train(variables, batches_, first_step):
  """Our optimiser and train step (as the trainer builds them) from step `first_step`."""
  config = agw_config()
  model = jax_model()
  tx = optimizer.make_optimizer(config.optim, vireid.param_groups(variables["params"]),
                                STEPS_PER_EPOCH)
  state = train_step.create_train_state(variables, tx, jnp.float32)
  # A run that reached `first_step`: the step and the optimiser's schedule counts.
  at = lambda path, x: (jnp.asarray(first_step, x.dtype)
                        if getattr(path[-1], "name", None) == "count" else x)
  state = state.replace(step=jnp.asarray(first_step, jnp.int32),
                        opt_state=jax.tree_util.tree_map_with_path(at, state.opt_state))
  step = train_step.make_train_step(model, tx, config.loss, jnp.float32)   # eager: see EAGER
  for batch in batches_:
    state, metrics = step(state, batch)
    assert float(metrics["train/nonfinite"]) == 0.0
  return {"params": state.params, "batch_stats": state.batch_stats}


# ----------------------------------------------------------------------------
# Comparisons.

def rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def flat(tree) -> dict[str, np.ndarray]:
  return {"/".join(getattr(k, "key", str(k)) for k in path): np.asarray(leaf, np.float64)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def whole_rel(ours: dict, ref: dict, base: dict | None = None) -> float:
  """Relative error of the concatenation of all tensors (of their change from `base`)."""
  keys = sorted(ref)
  assert set(ours) == set(ref), set(ours) ^ set(ref)
  d = lambda t, k: t[k] - (base[k] if base is not None else 0.0)
  num = sum(np.sum((d(ours, k) - d(ref, k)) ** 2) for k in keys)
  den = sum(np.sum(d(ref, k) ** 2) for k in keys)
  return float(np.sqrt(num / den))


def jax_variables(net) -> dict:
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), to_flax(state_of(net)))


@pytest.fixture(scope="module", autouse=True)
def xla_optimised():
  """XLA's default compiles here (the test run turns most optimisations off, conftest.py):
  unoptimised XLA:CPU sums in another order, 2.5e-3 of whole update error after warm-up."""
  before = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  jax.clear_caches()          # no executable compiled the other way is reused
  yield
  jax.config.update("jax_disable_most_optimizations", before)
  jax.clear_caches()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
  """torch on one thread: beside XLA's own pool, two torch threads run ~10x slower on 2 cores."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
  """(net, variables) for the gradient and SGD comparisons."""
  net = torch_net()
  return net, jax_variables(net)


@pytest.fixture(scope="module")
def setup_forward():
  """(net, variables) for the feature and loss-value comparisons (centred residual BNs)."""
  net = torch_net(seed=1, centred_residuals=True)
  return net, jax_variables(net)


def test_mapping_covers_every_torch_tensor(setup):
  net, variables = setup
  # Every parameter and statistic of our model is filled from the torch network, once.
  ref_struct = jax.eval_shape(lambda: vireid.init_variables(jax_model(), jax.random.key(0), (H, W)))
  assert jax.tree.structure(ref_struct) == jax.tree.structure(variables)
  for a, b in zip(jax.tree.leaves(ref_struct), jax.tree.leaves(variables)):
    assert a.shape == b.shape
  n_torch = sum(1 for k in net.state_dict() if _ours(k) is not None)
  assert len(jax.tree.leaves(variables)) == n_torch
  names = set(flat(variables))
  for layer, blocks in ((2, (2, 3)), (3, (3, 4, 5))):      # AGW's non-local positions
    for b in blocks:
      assert f"params/trunk/layer{layer}/nonlocal{b}/theta/kernel" in names
  assert not any("layer1/nonlocal" in k or "layer4/nonlocal" in k for k in names)


def test_eval_features_match(setup_forward):
  net, variables = setup_forward
  model = jax_model()
  x = batches(1, seed=7)[0]
  for modality, key in ((0, "visible"), (1, "infrared")):
    ours = model.apply(variables, x[key], modality, method=vireid.ViReIDNet.embed)
    ref = TorchAGW(net).features(x[key], modality)
    exact = TorchAGW(net, torch.float64).features(x[key], modality)
    print(f"{key} features: ours vs torch {rel(ours, ref):.1e} (torch float32 vs float64 "
          f"{rel(ref, exact):.1e})")
    assert rel(ours, ref) < 1e-5, (key, rel(ours, ref))


def test_train_losses_match(setup_forward):
  """CE and WRT of a train-mode pass, against the float64 torch values (float32 torch: ~1e-7)."""
  net, variables = setup_forward
  model = jax_model()
  batch = batches(1, seed=8)[0]
  labels = np.concatenate([batch["visible_labels"], batch["infrared_labels"]])
  out, _ = model.apply(variables, batch["visible"], batch["infrared"], train=True,
                       mutable=["batch_stats"])
  ours = (classification.cross_entropy(out["shared"]["logits"], labels),
          triplet.weighted_regularized_triplet(out["shared"]["feat"], labels))
  with torch.no_grad():
    ref = TorchAGW(net, torch.float64).losses(batch)
  for name, a, b in zip(("CE", "WRT"), ours, ref):
    print(f"{name}: ours {float(a):.7f}, torch float64 {float(b):.7f}, relative "
          f"{abs(float(a) / float(b) - 1):.1e}")
    assert abs(float(a) / float(b) - 1) < 1e-5, (name, float(a), float(b))


def _spread(runs: list[dict], ref: dict, base: dict | None = None) -> float:
  return max(whole_rel(r, ref, base) for r in runs)


def test_gradients_match(setup):
  net, variables = setup
  model = jax_model()
  batch = batches(1, seed=9)[0]
  labels = jnp.concatenate([batch["visible_labels"], batch["infrared_labels"]])

  def loss(params):
    out, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                         batch["visible"], batch["infrared"], train=True, mutable=["batch_stats"])
    return (classification.cross_entropy(out["shared"]["logits"], labels)
            + triplet.weighted_regularized_triplet(out["shared"]["feat"], labels))

  ours = flat(jax.grad(loss)(variables["params"]))
  ref = flat(to_flax(TorchAGW(net, torch.float64).gradients(batch))["params"])
  torch32 = [flat(to_flax(TorchAGW(net, torch.float32, cl).gradients(batch))["params"])
             for cl in (False, True)]
  err, spread = whole_rel(ours, ref), _spread(torch32, ref)
  print(f"gradients: ours vs float64 {err:.2e}, torch float32 vs float64 {spread:.2e}")
  assert err <= WHOLE_TOL and err <= SPREAD_FACTOR * max(spread, 1e-6), (err, spread)
  # The non-local blocks' gradients are compared too (not all zero).
  assert np.abs(ref["trunk/layer3/nonlocal5/theta/kernel"]).max() > 0


@pytest.mark.parametrize("epoch", [0, 10], ids=["warmup", "after_warmup"])
def test_three_sgd_steps_match(setup, epoch):
  net, variables = setup
  data = batches(3, seed=10 + epoch)
  start = flat(to_flax(state_of(net)))
  ours = flat(jax_train(variables, data, epoch * STEPS_PER_EPOCH))
  ref = flat(to_flax(TorchAGW(net, torch.float64).train(data, epoch)))
  torch32 = [flat(to_flax(TorchAGW(net, torch.float32, cl).train(data, epoch)))
             for cl in (False, True)]
  for coll in ("params", "batch_stats"):
    pick = lambda t: {k: v for k, v in t.items() if k.startswith(coll)}
    err = whole_rel(pick(ours), pick(ref), pick(start))
    spread = _spread([pick(t) for t in torch32], pick(ref), pick(start))
    print(f"epoch {epoch} {coll} change: ours vs float64 {err:.2e}, torch float32 {spread:.2e}")
    assert err <= WHOLE_TOL and err <= SPREAD_FACTOR * max(spread, 1e-6), (coll, err, spread)
