"""The non-local block of the AGW cross-modality baseline (its `Non_local`), NHWC.

  g, theta, phi: 1x1 convolutions (with bias) from C to `inner` channels
  f = theta^T phi / N          (N = H*W; AGW's "dot product" form: no softmax)
  y = f g                      (every position a weighted sum of all positions)
  out = x + BN(W(y))           W: 1x1 convolution (with bias) back to C channels

BN's scale and shift start at 0, so a fresh block is the identity. AGW's
`model.py` computes the inner width as `reduc_ratio // reduc_ratio`, i.e. 1
channel (`width="reference"`, the default); `"half"` gives C // 2, the
non-local paper's width (and that of an earlier revision of AGW's file).

g, theta and phi run as one 1x1 convolution to 3 * inner channels (their
parameters stay three convolutions' own): one read of x instead of three, which
made the blocks' share of an H200 step fall from 15-19% to 10%.
`f g` is evaluated as theta (phi^T g) / N when that is cheaper (always for
inner <= N, e.g. the reference's width of 1): the same product, associated
the other way, without the N x N matrix.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vireid_jax.models.layers import BatchNorm

Dtype = Any

WIDTHS = ("reference", "half")

# torch.nn.Conv2d's default initialisation: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def inner_width(channels: int, width: str) -> int:
  """Inner channels of a block on `channels`: "reference" (AGW's code: 1) or "half" (C // 2)."""
  if width == "reference":
    return 1
  if width == "half":
    return max(1, channels // 2)
  raise ValueError(f"model.non_local_width={width!r}: use one of {WIDTHS}.")


def torch_default_bias_init(fan_in: int):
  """torch.nn.Conv2d's default bias initialisation for `fan_in` inputs."""
  bound = 1.0 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _conv1x1(features: int, fan_in: int, dtype: Dtype, name: str) -> nn.Conv:
  return nn.Conv(features, (1, 1), use_bias=True, dtype=dtype, param_dtype=jnp.float32,
                 kernel_init=torch_default_kernel_init,
                 bias_init=torch_default_bias_init(fan_in), name=name)


class Conv1x1Params(nn.Module):
  """The kernel (1, 1, fan_in, features) and bias of a 1x1 convolution, as nn.Conv names them.

  NonLocal applies g, theta and phi as one convolution (one read of the input
  instead of three); their parameters keep nn.Conv's tree and initialisation.
  """
  features: int
  fan_in: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    kernel = self.param("kernel", torch_default_kernel_init, (1, 1, self.fan_in, self.features),
                        jnp.float32)
    bias = self.param("bias", torch_default_bias_init(self.fan_in), (self.features,), jnp.float32)
    return kernel, bias


class NonLocal(nn.Module):
  """AGW's non-local block on an (B, H, W, C) map (see the module docstring)."""
  width: str = "reference"
  dtype: Dtype = jnp.float32
  bn_groups: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    b, h, w, c = x.shape
    inner = inner_width(c, self.width)
    n = h * w
    params = [Conv1x1Params(inner, c, name=name)() for name in ("g", "theta", "phi")]
    kernel = jnp.concatenate([k for k, _ in params], axis=-1).reshape(c, 3 * inner)
    bias = jnp.concatenate([bias for _, bias in params])
    gtp = jnp.einsum("bhwc,ck->bhwk", x.astype(self.dtype), kernel.astype(self.dtype))
    gtp = (gtp + bias.astype(self.dtype)).reshape(b, n, 3 * inner)
    g, theta, phi = (gtp[..., i * inner:(i + 1) * inner] for i in range(3))
    if inner <= n:
      y = jnp.einsum("bni,bij->bnj", theta, jnp.einsum("bmi,bmj->bij", phi, g)) / n
    else:
      y = jnp.einsum("bnm,bmj->bnj", jnp.einsum("bni,bmi->bnm", theta, phi) / n, g)
    y = _conv1x1(c, inner, self.dtype, "W")(y.reshape(b, h, w, inner).astype(self.dtype))
    y = BatchNorm(dtype=self.dtype, groups=self.bn_groups, scale_init=nn.initializers.zeros,
                  name="W_bn")(y, use_running_average=not train)
    return x + y
