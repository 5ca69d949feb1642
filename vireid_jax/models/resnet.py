"""torchvision-compatible ResNets (v1.5) in Flax Linen, NHWC, split into reusable stages.

The two-modality network needs the stem twice, layer1-3 once and layer4
several times, so the pieces are separate modules: `ResNetStem`,
`ResNetStage` (built by `make_stage`) and `ResNet` = stem + layer1..layer4.
Every module is a plain dataclass (no state at construction), so a copy costs
nothing until it is initialised.

Numerics follow torchvision exactly, so ImageNet weights converted by
`pretrained.py` give the same features: explicit paddings (conv 7x7/2 pad 3,
max-pool 3x3/2 pad 1 with -inf padding, 3x3 convs pad 1 — never "SAME",
which pads asymmetrically at stride 2), the stride of a bottleneck on its
3x3 conv (v1.5), downsample = 1x1 conv (stride s) + BN, BN eps 1e-5 and
momentum 0.1 (flax 0.9), He-normal fan-out conv init, no conv biases.
`last_stride=1` (the ReID convention) sets layer4's stride to 1.
`bn_groups` and `fused_bn` are passed to every BatchNorm (`layers.BatchNorm.groups`,
`.fused`); each BatchNorm applies its block's ReLU and residual add itself.
`make_stage(..., non_local=True)` inserts AGW's non-local blocks
(`non_local.py`) after the blocks `non_local_blocks` lists.

Parameter names (torchvision key -> ours; `batch_stats` hold mean/var):
  conv1.weight                     stem/conv1/kernel        (OIHW -> HWIO)
  bn1.{weight,bias}                stem/bn1/{scale,bias}
  bn1.running_{mean,var}           stem/bn1/{mean,var}      (batch_stats)
  layerL.B.convK.weight            layerL/blockB/convK/kernel
  layerL.B.bnK.*                   layerL/blockB/bnK/*
  layerL.B.downsample.0.weight     layerL/blockB/downsample_conv/kernel
  layerL.B.downsample.1.*          layerL/blockB/downsample_bn/*
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vireid_jax.models.layers import BatchNorm, max_pool
from vireid_jax.models.non_local import NonLocal

Dtype = Any

# torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu"): untruncated normal.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

STAGE_WIDTHS = (64, 128, 256, 512)


def _conv(features: int, kernel: int, stride: int, dtype: Dtype, name: str) -> nn.Conv:
  pad = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, dtype=dtype,
                 param_dtype=jnp.float32, kernel_init=conv_init, name=name)


def _bn(dtype: Dtype, name: str, zero: bool = False, groups: int = 1,
        fused: str = "") -> BatchNorm:
  return BatchNorm(dtype=dtype, name=name, groups=groups, fused=fused,
                   scale_init=nn.initializers.zeros if zero else nn.initializers.ones)


class BasicBlock(nn.Module):
  """ResNet-18/34 block: 3x3 (stride) -> 3x3, expansion 1."""
  features: int
  stride: int = 1
  dtype: Dtype = jnp.float32
  zero_init_residual: bool = False
  bn_groups: int = 1
  fused_bn: str = ""
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ura, g, f = not train, self.bn_groups, self.fused_bn
    y = _conv(self.features, 3, self.stride, self.dtype, "conv1")(x)
    y = _bn(self.dtype, "bn1", groups=g, fused=f)(y, use_running_average=ura, relu=True)
    y = _conv(self.features, 3, 1, self.dtype, "conv2")(y)
    shortcut = _shortcut(self, x, self.features, ura)
    return _bn(self.dtype, "bn2", self.zero_init_residual, g, f)(
        y, use_running_average=ura, residual=shortcut, relu=True)


class Bottleneck(nn.Module):
  """ResNet-50 block (v1.5): 1x1 -> 3x3 (stride) -> 1x1 (x4 channels)."""
  features: int
  stride: int = 1
  dtype: Dtype = jnp.float32
  zero_init_residual: bool = False
  bn_groups: int = 1
  fused_bn: str = ""
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ura, g, f = not train, self.bn_groups, self.fused_bn
    out = self.features * self.expansion
    y = _conv(self.features, 1, 1, self.dtype, "conv1")(x)
    y = _bn(self.dtype, "bn1", groups=g, fused=f)(y, use_running_average=ura, relu=True)
    y = _conv(self.features, 3, self.stride, self.dtype, "conv2")(y)
    y = _bn(self.dtype, "bn2", groups=g, fused=f)(y, use_running_average=ura, relu=True)
    y = _conv(out, 1, 1, self.dtype, "conv3")(y)
    shortcut = _shortcut(self, x, out, ura)
    return _bn(self.dtype, "bn3", self.zero_init_residual, g, f)(
        y, use_running_average=ura, residual=shortcut, relu=True)


def _shortcut(block: nn.Module, x: jax.Array, out: int, ura: bool) -> jax.Array:
  """Identity, or torchvision's downsample (1x1 conv, stride s, + BN) when shapes change."""
  if block.stride == 1 and x.shape[-1] == out:
    return x
  s = _conv(out, 1, block.stride, block.dtype, "downsample_conv")(x)
  return _bn(block.dtype, "downsample_bn", groups=block.bn_groups, fused=block.fused_bn)(
      s, use_running_average=ura)


class ResNetStem(nn.Module):
  """conv 7x7/2 (pad 3) -> BN -> ReLU -> max-pool 3x3/2 (pad 1): (N,H,W,3) -> (N,H/4,W/4,64)."""
  dtype: Dtype = jnp.float32
  bn_groups: int = 1
  fused_bn: str = ""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = _conv(64, 7, 2, self.dtype, "conv1")(x.astype(self.dtype))
    x = _bn(self.dtype, "bn1", groups=self.bn_groups, fused=self.fused_bn)(
        x, use_running_average=not train, relu=True)
    # -inf padding, like torch's MaxPool2d(3, 2, padding=1).
    return max_pool(x, 3, 2, 1)


class ResNetStage(nn.Module):
  """One torchvision `layerL`: `num_blocks` blocks, the first with `stride` (+ downsample).

  `non_local` lists the blocks after which an AGW non-local block runs
  (`non_local.NonLocal`, named `nonlocal{i}` beside `block{i}`).
  """
  block_cls: type
  num_blocks: int
  features: int
  stride: int = 1
  dtype: Dtype = jnp.float32
  zero_init_residual: bool = False
  bn_groups: int = 1
  fused_bn: str = ""
  non_local: tuple[int, ...] = ()
  non_local_width: str = "reference"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i in range(self.num_blocks):
      x = self.block_cls(self.features, self.stride if i == 0 else 1, self.dtype,
                         self.zero_init_residual, self.bn_groups, self.fused_bn,
                         name=f"block{i}")(x, train)
      if i in self.non_local:
        x = NonLocal(self.non_local_width, self.dtype, self.bn_groups, name=f"nonlocal{i}")(
            x, train)
    return x


STAGE_SIZES = {
    10: (BasicBlock, (1, 1, 1, 1)),     # no ImageNet weights: tests and quick trials
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def stage_spec(depth: int) -> tuple[type, tuple[int, ...]]:
  """(block class, blocks per stage) of a torchvision ResNet of `depth`."""
  if depth not in STAGE_SIZES:
    raise ValueError(f"ResNet depth {depth} is not supported; use one of {sorted(STAGE_SIZES)}.")
  return STAGE_SIZES[depth]


def out_channels(depth: int) -> int:
  """Channels of layer4's output: 512 (basic blocks) or 2048 (bottlenecks)."""
  block, _ = stage_spec(depth)
  return STAGE_WIDTHS[-1] * block.expansion


# Non-local blocks per stage in AGW's cross-modality baseline (`non_layers=[0, 2, 3, 0]`):
# after the last 2 blocks of layer2 and the last 3 of layer3 (ResNet-50: 2-3 and 3-5, 0-based).
NON_LOCAL_PER_STAGE = (0, 2, 3, 0)


def non_local_blocks(depth: int, layer: int) -> tuple[int, ...]:
  """Blocks of `layer{layer}` followed by a non-local block in the AGW layout."""
  _, sizes = stage_spec(depth)
  n, k = sizes[layer - 1], NON_LOCAL_PER_STAGE[layer - 1]
  return tuple(range(max(0, n - k), n))


def make_stage(depth: int, layer: int, stride: int | None = None, dtype: Dtype = jnp.float32,
               name: str | None = None, zero_init_residual: bool = False,
               bn_groups: int = 1, fused_bn: str = "", non_local: bool = False,
               non_local_width: str = "reference") -> ResNetStage:
  """torchvision's `layer{layer}` (1..4) of a ResNet of `depth`; stride 1 for layer1, else 2.

  `non_local` adds AGW's non-local blocks where `non_local_blocks` puts them.
  """
  if layer not in (1, 2, 3, 4):
    raise ValueError(f"ResNet layer {layer} does not exist; use 1..4.")
  block, sizes = stage_spec(depth)
  if stride is None:
    stride = 1 if layer == 1 else 2
  after = non_local_blocks(depth, layer) if non_local else ()
  return ResNetStage(block, sizes[layer - 1], STAGE_WIDTHS[layer - 1], stride, dtype,
                     zero_init_residual, bn_groups, fused_bn, after, non_local_width, name=name)


class ResNet(nn.Module):
  """torchvision ResNet without pooling and fc: returns layer4's feature map.

  (N, 288, 144, 3) -> (N, 18, 9, 2048) for depth 50 with `last_stride=1`.
  Parameters are float32; convolutions and BN outputs are in `dtype`.
  """
  depth: int = 50
  last_stride: int = 1
  dtype: Dtype = jnp.float32
  zero_init_residual: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = ResNetStem(self.dtype, name="stem")(x, train)
    for layer in (1, 2, 3, 4):
      stride = self.last_stride if layer == 4 else None
      x = make_stage(self.depth, layer, stride, self.dtype, f"layer{layer}",
                     self.zero_init_residual)(x, train)
    return x


ResNet18 = functools.partial(ResNet, depth=18)
ResNet34 = functools.partial(ResNet, depth=34)
ResNet50 = functools.partial(ResNet, depth=50)
