"""Small layers shared by the backbone and the heads: BatchNorm, max-pool, GeM, BNNeck, classifier.

BatchNorm is our own (not `flax.linen.BatchNorm`) for one reason: PyTorch
updates the running variance with the *unbiased* batch variance (n / (n - 1))
while flax uses the biased one. On the pooled BNNeck features of a 32-image
branch batch that is a 3 % difference in the stored variance, i.e. in every
evaluation feature; matching PyTorch keeps our numbers comparable with the
AGW / CAJ / fast-reid code. Parameter and collection names are flax's
(`params/{scale,bias}`, `batch_stats/{mean,var}`), so checkpoints look familiar.

No `axis_name` anywhere: the train step runs under `jax.jit` with the batch
sharded over devices, and XLA computes the statistics over the global batch
(synchronised BatchNorm). `groups` > 1 instead normalises each of that many
contiguous blocks of the batch with its own statistics: with one block per
device (`model.sync_batchnorm=False`) that is PyTorch's DDP without
SyncBatchNorm, and it needs no cross-device reduction in the forward pass.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vireid_jax.models import fused_batchnorm

Dtype = Any
Initializer = Callable[..., jax.Array]

# PyTorch's BatchNorm defaults, in flax's convention (momentum = 1 - torch's 0.1).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# Added inside GeM's root, as AGW's `gm_pool` does.
GEM_EPS = 1e-12


class BatchNorm(nn.Module):
  """Batch normalisation over every axis but the last, with PyTorch semantics.

  Training: normalise with the biased batch variance (float32 statistics),
  update `mean`/`var` as `m * running + (1 - m) * batch`, using the unbiased
  variance for `var` (as `torch.nn.BatchNorm*d`). Evaluation: use the running
  statistics. Nothing is updated while initialising.

  Attributes:
    use_running_average: default for the call argument of the same name.
    momentum: flax convention (0.9 == torch momentum 0.1).
    epsilon: added to the variance.
    dtype: output dtype (None: that of the input). Statistics are float32.
    param_dtype: dtype of `scale` and `bias`.
    use_bias: False drops `bias` (BNNeck: the "frozen zero bias" of BoT/AGW).
    use_scale: False drops `scale`.
    scale_init, bias_init: initialisers.
    groups: training statistics per block of batch/groups contiguous rows (1: the
      whole batch). The running statistics take the mean of the blocks' updates.
    fused: "" (plain jnp, autodiff), "xla" or "pallas": in training with one group,
      `fused_batchnorm.batch_norm_act` (BatchNorm + residual + ReLU as one op with
      a hand-written backward pass; "pallas" runs its reductions as Pallas kernels
      on one GPU and falls back to "xla" elsewhere).

  The call's `residual` and `relu` fold a ResNet block's `relu(bn(x) + residual)`
  into the layer, so that the fused op can make fewer passes over memory.
  """
  use_running_average: bool | None = None
  momentum: float = BN_MOMENTUM
  epsilon: float = BN_EPSILON
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  scale_init: Initializer = nn.initializers.ones
  bias_init: Initializer = nn.initializers.zeros
  groups: int = 1
  fused: str = ""

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool | None = None, *,
               residual: jax.Array | None = None, relu: bool = False) -> jax.Array:
    use_running_average = nn.merge_param(
        "use_running_average", self.use_running_average, use_running_average)
    features = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
    scale = self.param("scale", self.scale_init, (features,), self.param_dtype) \
        if self.use_scale else None
    bias = self.param("bias", self.bias_init, (features,), self.param_dtype) \
        if self.use_bias else None
    training = not use_running_average and not self.is_initializing()
    if self.fused and training and self.groups == 1:
      y, stats = fused_batchnorm.batch_norm_act(
          x, scale, bias, residual, relu=relu, epsilon=self.epsilon,
          impl=fused_impl(self.fused, x), dtype=self.dtype or x.dtype)
      self._update_running(ra_mean, ra_var, stats.mean, stats.var, x.size // features)
      return y
    xf = x.astype(jnp.float32)
    groups = 1 if use_running_average or self.is_initializing() else self.groups
    if x.shape[0] % groups:
      raise ValueError(f"BatchNorm with groups={groups} (one per device) needs a batch divisible "
                       f"by it, got {x.shape[0]} rows: change the batch size or set "
                       "model.sync_batchnorm=True.")
    # groups > 1: (groups, rows per group, ...), statistics per group. groups == 1 keeps the
    # plain layout: the reshapes and size-1 group axis cost extra small kernels on the GPU.
    grouped = groups > 1
    xg = xf.reshape((groups, -1) + x.shape[1:]) if grouped else xf
    axes = tuple(range(int(grouped), xg.ndim - 1))
    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      # E[(x-s)^2] - E[x-s]^2 in float32: one fused pass over the activations. The shift s
      # (each channel's first value) avoids the cancellation of E[x^2] - E[x]^2 when
      # |mean| >> std (the non-local blocks' BN sees conv bias + a small signal).
      first = (slice(None),) * int(grouped) + (slice(0, 1),) * (xg.ndim - 1 - int(grouped))
      shift = jax.lax.stop_gradient(xg[first])
      xs = xg - shift
      mean_s = jnp.mean(xs, axis=axes, keepdims=True)
      var = jnp.maximum(jnp.mean(jnp.square(xs), axis=axes, keepdims=True) - jnp.square(mean_s),
                        0.0)
      mean = mean_s + shift
      if not grouped:
        mean, var = mean.reshape(features), var.reshape(features)
      if not self.is_initializing():
        per_group = (lambda v: v.reshape(groups, features)) if grouped else (lambda v: v)
        self._update_running(ra_mean, ra_var, per_group(mean), per_group(var),
                             x.size // (groups * features))
    mul = jax.lax.rsqrt(var + self.epsilon)
    if self.use_scale:
      mul = mul * scale
    y = (xg - mean) * mul
    if self.use_bias:
      y = y + bias
    y = (y.reshape(x.shape) if grouped else y).astype(self.dtype or x.dtype)
    if residual is not None:
      y = y + residual
    return nn.relu(y) if relu else y

  def _update_running(self, ra_mean, ra_var, mean, var, n: int) -> None:
    """Running averages of the batch mean and the unbiased variance (the mean over groups).

    `mean`, `var`: (features,) or (groups, features) biased batch statistics of
    `n` values each.
    """
    unbiased = var * (n / max(n - 1, 1))
    if mean.ndim == 2:
      mean, unbiased = jnp.mean(mean, axis=0), jnp.mean(unbiased, axis=0)
    m = self.momentum
    ra_mean.value = m * ra_mean.value + (1.0 - m) * jax.lax.stop_gradient(mean)
    ra_var.value = m * ra_var.value + (1.0 - m) * jax.lax.stop_gradient(unbiased)


def fused_impl(fused: str, x: jax.Array) -> str:
  """The `batch_norm_act` implementation for `BatchNorm.fused`: "pallas" only where it runs.

  The Pallas kernels need one GPU (a pallas_call is not partitioned over a
  sharded batch) and shapes they tile; anything else uses the XLA version.
  """
  if fused not in fused_batchnorm.IMPLS:
    raise ValueError(f"BatchNorm fused={fused!r}: use '', 'xla' or 'pallas'.")
  if fused == "pallas" and (jax.default_backend() != "gpu" or jax.device_count() != 1 or
                            fused_batchnorm.pallas_blocks(x.size // x.shape[-1], x.shape[-1])
                            is None):
    return "xla"
  return fused


def max_pool(x: jax.Array, window: int = 3, stride: int = 2, padding: int = 1) -> jax.Array:
  """Square max-pool of an NHWC map with -inf padding (torch's `MaxPool2d(window, stride, padding)`).

  flax's pool, whose gradient (XLA's select-and-scatter) sends each window's
  gradient to its first maximum in row-major order, as torch does at ties. Two
  hand-written elementwise backward passes were timed against it on an H200
  and were no faster (CHANGELOG.md, 2026-11-30), so the plain op stays.
  """
  _, h, w, _ = x.shape
  if h + 2 * padding < window or w + 2 * padding < window:
    raise ValueError(f"max_pool: a {h}x{w} map is smaller than the {window}x{window} window.")
  return nn.max_pool(x, (window, window), strides=(stride, stride),
                     padding=((padding, padding), (padding, padding)))


class GeM(nn.Module):
  """Generalised-mean pooling over H and W: (N, H, W, C) -> (N, C), float32.

  Fixed p (AGW's `gm_pool`): `(mean(max(x, 0)^p) + 1e-12)^(1/p)`, the
  reference's formula on its post-ReLU input (the max only guards against
  negative inputs); an all-zero channel pools to 1e-4. With `learnable`, p is
  a scalar parameter `p` initialised to `p` (fast-reid's GeM): inputs are
  clamped at `eps` first, so that the gradient of x^p with respect to p stays
  finite. Computed in float32 whatever the input dtype (x^3 of bfloat16
  activations loses too much); a fixed integer p uses an integer power.
  """
  p: float = 3.0
  learnable: bool = False
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"GeM expects (N, H, W, C) feature maps, got shape {x.shape}.")
    x = x.astype(jnp.float32)
    if self.learnable:
      p = self.param("p", lambda _: jnp.asarray(self.p, jnp.float32))
      pooled = jnp.mean(jnp.power(jnp.maximum(x, self.eps), p), axis=(1, 2))
      return jnp.power(pooled, 1.0 / p)
    p = float(self.p)
    x = jnp.maximum(x, 0.0)
    if p.is_integer() and p > 0:
      pooled = jnp.mean(jax.lax.integer_pow(x, int(p)), axis=(1, 2))
    else:
      pooled = jnp.mean(jnp.power(x, p), axis=(1, 2))
    return jnp.power(pooled + GEM_EPS, 1.0 / p)


def bnneck_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """N(1, 0.01^2): AGW's `weights_init_kaiming` for a BatchNorm1d weight."""
  return 1.0 + 0.01 * jax.random.normal(key, shape, dtype)


class BNNeck(BatchNorm):
  """BatchNorm of the pooled feature with no shift (BoT / AGW bottleneck).

  The torch code keeps a bias frozen at zero; having no bias is the same
  function. Scale starts at N(1, 0.01^2), as AGW's `weights_init_kaiming`
  sets a BatchNorm1d. Runs in float32 (it is tiny). Returns the BN feature
  `f_bn` that feeds the classifier and retrieval.
  """
  use_bias: bool = False
  dtype: Dtype | None = jnp.float32
  scale_init: Initializer = bnneck_scale_init

  def __call__(self, feat: jax.Array, train: bool) -> jax.Array:  # pylint: disable=arguments-renamed
    return super().__call__(feat.astype(jnp.float32), use_running_average=not train)


def classifier(num_classes: int, name: str | None = None) -> nn.Dense:
  """Bias-free identity classifier, weights ~ N(0, 0.001^2) (AGW / BoT), float32."""
  return nn.Dense(num_classes, use_bias=False, dtype=jnp.float32, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.normal(stddev=0.001), name=name)


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """x / max(||x||, sqrt(eps)) in float32 (zero rows stay zero, no NaN)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=axis, keepdims=True), eps))
