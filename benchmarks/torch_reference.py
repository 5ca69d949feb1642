"""The same training step in PyTorch, timed the same way, for a like-for-like speed comparison.

  python -m benchmarks.torch_reference --mode=eager --batch=64 --out=bench_out/torch_eager.json
  python -m benchmarks.torch_reference --mode=compile --batch=64 --out=bench_out/torch_compile.json

Our own code, written for this comparison. `--model=agw` is the AGW
cross-modality baseline as `configs/agw_baseline.py` builds it in JAX:
ResNet (torchvision, random init; a built-in copy of its layout when
torchvision is missing) with last stride 1, a conv1/bn1/relu/maxpool stem per
modality, shared layer1-4 with AGW's non-local blocks (`NonLocal`, after layer2
blocks 2-3 and layer3 blocks 3-5), GeM (p=3), BNNeck (frozen zero bias),
bias-free classifier; loss = cross-entropy + weighted regularised triplet; SGD (momentum
0.9, Nesterov, weight decay 5e-4) with lr 0.01 for the backbone and 0.1 for
the new layers. `--model=full` adds the intra-modality branches (own layer4
copies, GeM, BNNeck, classifier, on each modality's images only) and the
identity-level symmetric-KL distribution loss, as `configs/sysu.py`.
`tests/test_agw_parity.py` loads the same weights into this network and ours
and checks that features, losses, gradients and SGD updates agree.

uint8 NHWC batches live on the device and are normalised inside the step (as
in JAX); the network runs channels_last under bf16 autocast. `--mode=compile`
compiles the forward pass and the loss as one graph with `torch.compile`
(AOTAutograd compiles the backward from it); the optimiser step stays eager
(foreach SGD) unless `--compile_optimizer`.
"""

from __future__ import annotations

import copy
import importlib.metadata as md
import platform
import sys
import time
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import common as bench

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
INSTANCES = bench.INSTANCES


# ----------------------------------------------------------------------------
# ResNet: torchvision's, or the same layout built here.

class _BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    idt = x if self.downsample is None else self.downsample(x)
    y = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(y)) + idt)


class _Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)   # stride on the 3x3 (v1.5)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    idt = x if self.downsample is None else self.downsample(x)
    y = self.relu(self.bn1(self.conv1(x)))
    y = self.relu(self.bn2(self.conv2(y)))
    return self.relu(self.bn3(self.conv3(y)) + idt)


class _ResNet(nn.Module):
  """torchvision's ResNet layout (same attribute names), for machines without torchvision."""

  def __init__(self, block, layers):
    super().__init__()
    self.inplanes = 64
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make(block, 64, layers[0], 1)
    self.layer2 = self._make(block, 128, layers[1], 2)
    self.layer3 = self._make(block, 256, layers[2], 2)
    self.layer4 = self._make(block, 512, layers[3], 2)
    self.fc = nn.Linear(512 * block.expansion, 1000)
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

  def _make(self, block, planes, blocks, stride):
    down = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                           nn.BatchNorm2d(planes * block.expansion))
    layers = [block(self.inplanes, planes, stride, down)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


_LAYOUTS = {18: (_BasicBlock, (2, 2, 2, 2)), 34: (_BasicBlock, (3, 4, 6, 3)),
            50: (_Bottleneck, (3, 4, 6, 3))}


def build_resnet(depth: int, impl: str = "auto") -> tuple[nn.Module, str]:
  """A randomly initialised ResNet-`depth` and which implementation made it."""
  if depth not in _LAYOUTS:
    raise ValueError(f"--depth={depth}: use 18, 34 or 50.")
  if impl in ("auto", "torchvision"):
    try:
      import torchvision  # pylint: disable=g-import-not-at-top
      return getattr(torchvision.models, f"resnet{depth}")(weights=None), "torchvision"
    except ImportError:
      if impl == "torchvision":
        raise
    except Exception as e:  # pylint: disable=broad-except
      # e.g. a CPU torchvision wheel whose compiled ops do not match torch.
      if impl == "torchvision":
        raise
      print(f"torchvision unusable ({e!r}); using the built-in ResNet", file=sys.stderr)
  block, layers = _LAYOUTS[depth]
  return _ResNet(block, layers), "builtin"


def set_last_stride_one(resnet: nn.Module) -> None:
  """layer4 keeps layer3's resolution (re-ID's 'last stride 1')."""
  first = resnet.layer4[0]
  conv = first.conv2 if hasattr(first, "conv3") else first.conv1
  conv.stride = (1, 1)
  if first.downsample is not None:
    first.downsample[0].stride = (1, 1)


# ----------------------------------------------------------------------------
# The networks.

def gem(x: torch.Tensor, p: float = 3.0) -> torch.Tensor:
  """AGW's generalised-mean pooling over H, W (post-ReLU input), in float32 or float64."""
  x = x if x.dtype == torch.float64 else x.float()
  return (x.pow(p).mean(dim=(2, 3)) + 1e-12).pow(1.0 / p)


class NonLocal(nn.Module):
  """AGW's non-local block: 1x1 g/theta/phi to `inner` channels, f = theta^T phi / N, x + BN(W(f g))."""

  def __init__(self, channels: int, inner: int = 1):
    super().__init__()
    self.g = nn.Conv2d(channels, inner, 1)
    self.theta = nn.Conv2d(channels, inner, 1)
    self.phi = nn.Conv2d(channels, inner, 1)
    self.W = nn.Conv2d(inner, channels, 1)
    self.W_bn = nn.BatchNorm2d(channels)
    nn.init.zeros_(self.W_bn.weight)
    nn.init.zeros_(self.W_bn.bias)

  def forward(self, x):
    b, _, h, w = x.shape
    g = self.g(x).flatten(2).transpose(1, 2)               # (b, N, inner)
    theta = self.theta(x).flatten(2).transpose(1, 2)       # (b, N, inner)
    phi = self.phi(x).flatten(2)                           # (b, inner, N)
    f = theta @ phi / (h * w)                              # (b, N, N), no softmax
    y = (f @ g).transpose(1, 2).reshape(b, -1, h, w)
    return x + self.W_bn(self.W(y))


# AGW's embed_net(no_local='on'): non-local blocks after the last 2 blocks of layer2 and the
# last 3 of layer3 (ResNet-50: layer2 blocks 2-3, layer3 blocks 3-5).
NON_LOCAL_PER_STAGE = (0, 2, 3)


class NonLocalStage(nn.Module):
  """A ResNet stage with non-local blocks after some of its blocks."""

  def __init__(self, stage: nn.Sequential, count: int, inner: int | None):
    super().__init__()
    self.blocks = stage
    n = len(stage)
    channels = _out_channels(stage[-1])
    inner = max(1, channels // 2) if inner is None else inner
    self.non_local = nn.ModuleDict({str(i): NonLocal(channels, inner)
                                    for i in range(max(0, n - count), n)})

  def forward(self, x):
    for i, block in enumerate(self.blocks):
      x = block(x)
      if str(i) in self.non_local:
        x = self.non_local[str(i)](x)
    return x


def _out_channels(block: nn.Module) -> int:
  last = block.bn3 if hasattr(block, "bn3") else block.bn2
  return last.num_features


class Head(nn.Module):
  """GeM -> BNNeck (weight ~ N(1, 0.01), frozen zero bias) -> bias-free classifier."""

  def __init__(self, dim: int, num_classes: int, gem_p: float = 3.0):
    super().__init__()
    self.gem_p = gem_p
    self.bnneck = nn.BatchNorm1d(dim)
    nn.init.normal_(self.bnneck.weight, 1.0, 0.01)
    nn.init.zeros_(self.bnneck.bias)
    self.bnneck.bias.requires_grad_(False)
    self.classifier = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(self.classifier.weight, std=0.001)

  def forward(self, x):
    f = gem(x, self.gem_p)
    f_bn = self.bnneck(f)
    return f, f_bn, self.classifier(f_bn)


class TwoStreamNet(nn.Module):
  """Per-modality stems, shared layer1-4 and head; with `intra`, a layer4 + head per modality.

  `non_local` adds AGW's non-local blocks (inner width `non_local_inner`: AGW's code uses 1;
  None gives C // 2).
  """

  def __init__(self, depth: int, num_classes: int, intra: bool = False, impl: str = "auto",
               non_local: bool = False, non_local_inner: int | None = 1):
    super().__init__()
    base, self.resnet_impl = build_resnet(depth, impl)
    set_last_stride_one(base)
    stem = nn.Sequential(base.conv1, base.bn1, base.relu, base.maxpool)
    self.visible_stem = stem
    self.infrared_stem = copy.deepcopy(stem)
    stages = [base.layer1, base.layer2, base.layer3]
    if non_local:
      stages = [NonLocalStage(s, k, non_local_inner) if k else s
                for s, k in zip(stages, NON_LOCAL_PER_STAGE)]
    self.trunk = nn.Sequential(*stages)
    self.layer4 = base.layer4
    dim = base.fc.in_features
    self.head = Head(dim, num_classes)
    self.intra = intra
    if intra:
      self.visible_layer4 = copy.deepcopy(base.layer4)
      self.infrared_layer4 = copy.deepcopy(base.layer4)
      self.visible_head = Head(dim, num_classes)
      self.infrared_head = Head(dim, num_classes)

  def new_layer_params(self) -> list[nn.Parameter]:
    heads = [self.head] + ([self.visible_head, self.infrared_head] if self.intra else [])
    return [p for h in heads for p in h.parameters() if p.requires_grad]

  def pretrained_params(self) -> list[nn.Parameter]:
    new = {id(p) for p in self.new_layer_params()}
    return [p for p in self.parameters() if p.requires_grad and id(p) not in new]

  def forward(self, visible, infrared):
    n = visible.shape[0]
    x = torch.cat([self.visible_stem(visible), self.infrared_stem(infrared)])
    x = self.trunk(x)
    out = {"shared": self.head(self.layer4(x))}
    if self.intra:
      out["visible"] = self.visible_head(self.visible_layer4(x[:n]))
      out["infrared"] = self.infrared_head(self.infrared_layer4(x[n:]))
    return out

  def embed(self, images, modality: int):
    """AGW's test feature: the L2-normalised BNNeck feature of one modality's images."""
    stem = self.visible_stem if modality == 0 else self.infrared_stem
    _, f_bn, _ = self.head(self.layer4(self.trunk(stem(images))))
    return F.normalize(f_bn, dim=1)


# ----------------------------------------------------------------------------
# Losses (float32).

def _soft_hardest(feats: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0):
  """AGW/CAJ's softly furthest positive and softly closest negative distance per anchor."""
  sq = feats.pow(2).sum(1, keepdim=True)
  dist = (sq + sq.t() - 2.0 * feats @ feats.t()).clamp(min=1e-12).sqrt()
  same = labels[:, None] == labels[None, :]
  pos, neg = same.to(feats.dtype), (~same).to(feats.dtype)

  def weights(d, mask):
    d_max = (d * mask).max(dim=1, keepdim=True).values
    e = torch.exp(d - d_max) * mask
    return e / (e.sum(dim=1, keepdim=True) + 1e-6)

  d_ap, d_an = dist * pos, dist * neg
  furthest_pos = (d_ap * weights(d_ap * alpha, pos)).sum(1)
  closest_neg = (d_an * weights(-d_an * alpha, neg)).sum(1)
  return furthest_pos, closest_neg


def weighted_regularized_triplet(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
  """AGW's WRT: softmax-weighted positive and negative distances, soft-margin ranking loss."""
  furthest_pos, closest_neg = _soft_hardest(feats, labels)
  return F.softplus(furthest_pos - closest_neg).mean()   # SoftMarginLoss with y = 1


def adaptive_triplet(feats: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0,
                     gamma: float = 1.0, square: bool = True) -> torch.Tensor:
  """CAJ's TripletLoss_ADP (ICCV21_CAJ/loss.py), as `train_ext.py --method adp` runs it."""
  fp, cn = _soft_hardest(feats, labels, alpha)
  if not square:
    return F.softplus(gamma * (fp - cn)).mean()
  diff = torch.clamp_max(gamma * (fp - cn).pow(2), 88.0)
  y = torch.where(fp > cn, -1.0, 1.0).to(feats.dtype)     # SoftMarginLoss target
  return F.softplus(-y * diff).mean()


def identity_sym_kl(f_vis: torch.Tensor, f_ir: torch.Tensor, k: int,
                    var_floor: float = 1e-6) -> torch.Tensor:
  """Per identity, diagonal Gaussians of each modality's (L2-normalised) features; symmetric KL."""
  def stats(f):
    f = F.normalize(f, dim=1).reshape(-1, k, f.shape[1])
    return f.mean(1), f.var(1, unbiased=False).clamp(min=var_floor)

  mu_v, s_v = stats(f_vis)
  mu_i, s_i = stats(f_ir)
  d2 = (mu_v - mu_i).pow(2)
  return (0.25 * (s_v / s_i + s_i / s_v - 2.0 + d2 * (1.0 / s_v + 1.0 / s_i))).mean()


def total_loss(out: dict, labels: torch.Tensor, n: int, k: int,
               w_intra: float = 0.5, w_dist: float = 0.1) -> torch.Tensor:
  def id_tri(head_out, lab):
    f, _, logits = head_out
    return F.cross_entropy(logits.float(), lab) + weighted_regularized_triplet(f.float(), lab)

  loss = id_tri(out["shared"], labels)
  if "visible" in out:
    loss = loss + w_intra * (id_tri(out["visible"], labels[:n]) +
                             id_tri(out["infrared"], labels[n:]))
    f = out["shared"][0].float()
    loss = loss + w_dist * identity_sym_kl(f[:n], f[n:], k)
  return loss


# ----------------------------------------------------------------------------
# The step.

def make_step(model: nn.Module, opt: torch.optim.Optimizer, device: torch.device, amp: bool,
              k: int, compile_mode: str | None, compile_optimizer: bool,
              w_intra: float, w_dist: float):
  """Returns (step, eager_step), each `(batch) -> loss`; eager_step is for FLOP counting.

  `compile_mode` None runs eagerly; else a torch.compile mode ("default", ...).
  """
  mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
  std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

  def to_input(x_u8):
    # NHWC uint8 viewed as NCHW is already channels_last in memory.
    x = (x_u8.permute(0, 3, 1, 2).float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last)

  def forward_loss(vis_u8, ir_u8, labels):
    n = vis_u8.shape[0]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
      out = model(to_input(vis_u8), to_input(ir_u8))
    with torch.autocast(device.type, enabled=False):
      return total_loss(out, labels, n, k, w_intra, w_dist)

  fwd, opt_step = forward_loss, opt.step
  if compile_mode:
    mode = None if compile_mode == "default" else compile_mode
    fwd = torch.compile(forward_loss, mode=mode, dynamic=False)
    if compile_optimizer:
      opt_step = torch.compile(opt.step, dynamic=False)

  def step(batch):
    loss = fwd(batch["visible"], batch["infrared"], batch["labels"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt_step()
    return loss.detach()

  def eager_step(batch):
    loss = forward_loss(batch["visible"], batch["infrared"], batch["labels"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()

  return step, eager_step


def make_batches(p: int, k: int, image_size, num_classes: int, device, seed: int,
                 count: int = 2) -> list[dict]:
  g = torch.Generator().manual_seed(seed)
  h, w = image_size
  batches = []
  for _ in range(count):
    ids = torch.randperm(num_classes, generator=g)[:p]
    labels = ids.repeat_interleave(k)
    vis = torch.randint(0, 256, (p * k, h, w, 3), generator=g, dtype=torch.uint8)
    ir = torch.randint(0, 256, (p * k, h, w, 3), generator=g, dtype=torch.uint8)
    batches.append({"visible": vis.to(device), "infrared": ir.to(device),
                    "labels": torch.cat([labels, labels]).to(device)})
  return batches


def count_flops(step_fn, batch) -> float | None:
  try:
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  with FlopCounterMode(display=False) as counter:
    step_fn(batch)
  return float(counter.get_total_flops()) or None


def versions_torch() -> dict[str, str]:
  out = {"python": platform.python_version(), "torch": torch.__version__}
  try:
    out["torchvision"] = md.version("torchvision")
  except md.PackageNotFoundError:
    pass
  if torch.cuda.is_available():
    out["cuda"] = str(torch.version.cuda)
    out["cudnn"] = str(torch.backends.cudnn.version())
  return out


def torch_matmul_peak(n: int, device, seed: int = 0) -> dict[str, float]:
  g = torch.Generator(device=device).manual_seed(seed)
  a = torch.randn(n, n, device=device, generator=g).to(torch.bfloat16)
  b = torch.randn(n, n, device=device, generator=g).to(torch.bfloat16)
  sync = (lambda _: torch.cuda.synchronize()) if device.type == "cuda" else (lambda _: None)
  return bench.matmul_peak(lambda: a @ b, sync, 2.0 * n ** 3)


def model_settings(args, config) -> dict:
  """Model and loss weights: from --config when given, else --model."""
  settings = {"model": args.model or "agw", "w_intra": 0.5, "w_dist": 0.1,
              "non_local": True, "non_local_inner": 1}
  if config is not None:
    if not args.model:
      settings["model"] = "full" if config.model.intra_branches else "agw"
    settings["w_intra"] = float(config.loss.w_intra)
    settings["w_dist"] = float(config.loss.w_dist)
    settings["non_local"] = bool(config.model.non_local)
    settings["non_local_inner"] = 1 if config.model.non_local_width == "reference" else None
    if config.loss.triplet != "wrt" or config.model.branch != "layer4" or not config.model.two_stream:
      print("note: the torch reference implements triplet=wrt, branch=layer4, two_stream=True "
            f"only; {args.config} asks for triplet={config.loss.triplet}, "
            f"branch={config.model.branch}, two_stream={config.model.two_stream}.",
            file=sys.stderr)
  return settings


def run_torch(args, config=None) -> dict:
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  torch.manual_seed(args.seed)
  if device.type == "cuda":
    torch.backends.cudnn.benchmark = True          # as the AGW/CAJ training scripts
    if args.dtype == "float32":
      # XLA's GPU default for float32 convolutions and matmuls is TF32 too.
      torch.backends.cuda.matmul.allow_tf32 = True
      torch.backends.cudnn.allow_tf32 = True
  settings = model_settings(args, config)
  batches = sorted(set(args.batch or [64]))
  layouts = {b: bench.batch_layout(b) for b in batches}
  amp = args.dtype == "bfloat16"
  compile_mode = args.compile_mode if args.mode == "compile" else None

  model = TwoStreamNet(args.depth, args.num_classes, intra=settings["model"] == "full",
                       impl=args.resnet, non_local=settings["non_local"],
                       non_local_inner=settings["non_local_inner"]).to(device).to(memory_format=torch.channels_last)
  model.train()
  opt = torch.optim.SGD(
      [{"params": model.pretrained_params(), "lr": 0.01},
       {"params": model.new_layer_params(), "lr": 0.1}],
      lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
  device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
  report = {
      "framework": "torch", "mode": args.mode, "model": settings["model"], "config": args.config,
      "device_kind": device_name, "platform": device.type, "num_devices": 1,
      "versions": versions_torch(), "resnet_impl": model.resnet_impl,
      "dtype": args.dtype, "image_size": list(args.image_size), "depth": args.depth,
      "num_classes": args.num_classes, "steps": args.steps, "warmup": args.warmup,
      "w_intra": settings["w_intra"], "w_dist": settings["w_dist"],
      "non_local": settings["non_local"],
      "num_params": sum(p.numel() for p in model.parameters()),
      "compile_scope": ("forward+loss compiled as one graph (AOTAutograd backward); optimiser "
                        + ("compiled" if args.compile_optimizer else "eager foreach SGD")
                        + f"; mode={args.compile_mode}") if args.mode == "compile" else None,
      "flops_note": "flops_per_step from torch.utils.flop_counter on one eager step: "
                    "matmuls and convolutions only (forward + backward).",
      "results": []}
  print(f"torch {torch.__version__} | {device_name} | mode {args.mode} | model {settings['model']} "
        f"({model.resnet_impl} ResNet-{args.depth}) {args.image_size[0]}x{args.image_size[1]} "
        f"{args.dtype}", flush=True)
  if args.peak_size:
    peak = torch_matmul_peak(args.peak_size, device, args.seed)
    report["peak_tflops"] = peak["tflops_median"]
    report["peak_tflops_best"] = peak["tflops_best"]
    report["peak_size"] = args.peak_size
    print(f"bf16 matmul {args.peak_size}^3: {peak['tflops_median']:.1f} TFLOP/s median, "
          f"{peak['tflops_best']:.1f} best", flush=True)
  bench.write_report(args.out, report)

  def sync(_=None):
    if device.type == "cuda":
      torch.cuda.synchronize(device)

  step, eager_step = make_step(model, opt, device, amp, INSTANCES, compile_mode,
                               args.compile_optimizer and args.mode == "compile",
                               settings["w_intra"], settings["w_dist"])
  for b in batches:
    p, k = layouts[b]
    data = make_batches(p, k, args.image_size, args.num_classes, device, args.seed + b)
    if device.type == "cuda":
      torch.cuda.reset_peak_memory_stats(device)
    flops = count_flops(eager_step, data[0]) if args.count_flops else None
    holder = {"i": 0, "loss": None}

    def one_step():
      holder["loss"] = step(data[holder["i"] % len(data)])
      holder["i"] += 1
      return holder["loss"]

    sync()
    t0 = time.perf_counter()
    one_step()          # compiles (compile mode) / autotunes cuDNN (eager)
    sync()
    first_s = time.perf_counter() - t0
    if args.warmup > 1:
      bench.time_steps(one_step, sync, args.warmup - 1, chunks=1)
    res = bench.time_steps(one_step, sync, args.steps, args.chunks)
    res.update({"batch": b, "identities": p, "instances": k, "compile_s": first_s,
                "compile_s_note": "first step, synchronised (compile / cuDNN autotune included)",
                "flops_per_step": flops, "flops_source": "torch_flop_counter" if flops else None,
                "final_loss": float(holder["loss"])})
    bench.add_rates(res, b, flops, report.get("peak_tflops"))
    if device.type == "cuda":
      res["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    report["results"].append(res)
    bench.write_report(args.out, report)
    print(bench.describe_result(res), flush=True)
    del data, holder
  return report


def main(argv: Sequence[str] | None = None) -> int:
  ap = bench.common_parser(__doc__.split("\n\n")[0])
  ap.add_argument("--mode", default="eager", choices=("eager", "compile"))
  ap.add_argument("--model", default=None, choices=("agw", "full"),
                  help="agw (default) or full; with --config, taken from model.intra_branches")
  ap.add_argument("--compile_mode", default="default",
                  choices=("default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead"))
  ap.add_argument("--compile_optimizer", action="store_true",
                  help="also torch.compile the optimiser step (compile mode)")
  ap.add_argument("--resnet", default="auto", choices=("auto", "torchvision", "builtin"))
  ap.add_argument("--no_count_flops", dest="count_flops", action="store_false",
                  help="skip the one extra eager step that counts FLOPs")
  args, config = bench.parse_args(ap, argv)
  bench.check_batches(ap, args.batch)
  run_torch(args, config)
  return 0


if __name__ == "__main__":
  sys.exit(main())
