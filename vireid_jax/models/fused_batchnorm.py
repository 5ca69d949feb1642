"""Training-mode BatchNorm + residual add + ReLU as one op with a hand-written backward pass.

Why: in a ResNet step most of the non-convolution time is spent moving
activations through memory around each BatchNorm. The fewest passes one
BatchNorm (+ residual) + ReLU site can make over its activation x (M rows of
C channels) are:

  forward   one read of x for the statistics; one read of x (and of the
            residual r) and one write of y to normalise;
  backward  one read of dy and x (and of y, whose sign is the ReLU mask when
            a residual was added) for the two per-channel sums; one more read
            of them and one write of dx (and of dr, the residual's gradient).

`batch_norm_act` is that op, as a `jax.custom_vjp` that saves only x, y and
the per-channel statistics, so autodiff keeps no float32 copy, pre-activation
or mask of its own. Its two reductions run either as XLA fusions (`impl="xla"`)
or as Pallas kernels (`impl="pallas"`, GPU only: Triton, float32 partial sums
per block of rows, added up by XLA); the elementwise passes are XLA fusions in
both. Statistics are float32; `y` is computed in float32 and rounded once.

It is off by default (`model.fused_bn=""`): on an H200 it made fewer passes per site but
the training step 1-7% slower (XLA likely fuses more across sites around plain autodiff;
BENCHMARKS.md, "Levers tried on one GPU").
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

IMPLS = ("xla", "pallas")
_TILE_ELEMENTS = 8192        # one loop step of a Pallas program: rows x channels it adds
_ITERS_PER_PROGRAM = 4       # loop steps per program: many programs keep the loads in flight
_MAX_BLOCK_CHANNELS = 128


class Stats(NamedTuple):
  """Per-channel batch statistics (float32): mean and biased variance."""
  mean: jax.Array
  var: jax.Array


# ----------------------------------------------------------------------------
# Per-channel sums: XLA or Pallas.

def _pow2_divisor(n: int, cap: int) -> int:
  d = 1
  while d < cap and n % (2 * d) == 0:
    d *= 2
  return d


def pallas_blocks(rows: int, channels: int) -> tuple[int, int] | None:
  """(block rows, block channels) for the Pallas kernels, or None where they do not apply."""
  bc = min(channels, _MAX_BLOCK_CHANNELS)
  if channels % bc or bc & (bc - 1) or bc < 16:
    return None
  bm = _pow2_divisor(rows, _ITERS_PER_PROGRAM * _rows_per_iter(bc))
  if bm < 16:
    return None
  return bm, bc


def _rows_per_iter(block_channels: int) -> int:
  return max(16, _TILE_ELEMENTS // block_channels)


def _column_sums_kernel(*refs, num_inputs: int, fn, rows: int):
  """Adds `fn(*tiles)` (each a (rows, BC) float32 tile) over the block's rows, per output."""
  in_refs, out_refs = refs[:num_inputs], refs[num_inputs:]
  vec_refs = [r for r in in_refs if r.shape[0] == 1]
  big_refs = [r for r in in_refs if r.shape[0] != 1]
  block_rows = big_refs[0].shape[0]
  vecs = [r[...].astype(jnp.float32) for r in vec_refs]

  def body(i, accs):
    tiles = [r[pl.ds(i * rows, rows), :].astype(jnp.float32) for r in big_refs]
    return tuple(a + v for a, v in zip(accs, fn(tiles, vecs)))

  zero = jnp.zeros((rows, big_refs[0].shape[1]), jnp.float32)
  accs = jax.lax.fori_loop(0, block_rows // rows, body, tuple(zero for _ in out_refs))
  for ref, acc in zip(out_refs, accs):
    ref[...] = jnp.sum(acc, axis=0, keepdims=True)


def _pallas_column_sums(fn, num_outputs: int, big: list[jax.Array], vecs: list[jax.Array],
                        interpret: bool = False) -> tuple[jax.Array, ...]:
  """Per-channel sums over rows of `fn(tiles, vecs)`; big are (M, C), vecs are (C,)."""
  m, c = big[0].shape
  bm, bc = pallas_blocks(m, c)
  rows = min(_rows_per_iter(bc), bm)
  grid = (m // bm, c // bc)
  big_spec = pl.BlockSpec((bm, bc), lambda i, j: (i, j))
  vec_spec = pl.BlockSpec((1, bc), lambda i, j: (0, j))
  out_spec = pl.BlockSpec((1, bc), lambda i, j: (i, j))
  kernel = functools.partial(_column_sums_kernel, num_inputs=len(big) + len(vecs), fn=fn,
                             rows=rows)
  partials = pl.pallas_call(
      kernel, grid=grid, in_specs=[big_spec] * len(big) + [vec_spec] * len(vecs),
      out_specs=[out_spec] * num_outputs,
      out_shape=[jax.ShapeDtypeStruct((grid[0], c), jnp.float32)] * num_outputs,
      interpret=interpret, name="batchnorm_sums")(*big, *(v.reshape(1, c) for v in vecs))
  return tuple(jnp.sum(p, axis=0) for p in partials)


def _forward_terms(tiles, vecs):
  x = tiles[0] - vecs[0]                   # shifted (see _stats)
  return x, x * x


def _backward_terms(tiles, vecs):
  """dm (dy through the ReLU mask) and dm * xhat, from (dy, x[, y]) and (mean, inv[, mul, bias])."""
  g, x = tiles[0], tiles[1]
  xhat = (x - vecs[0]) * vecs[1]
  if len(tiles) == 3:                      # mask = sign of the saved output
    g = jnp.where(tiles[2] > 0, g, 0.0)
  elif len(vecs) == 4:                     # mask recomputed from x: the forward's formula
    g = jnp.where((x - vecs[0]) * vecs[2] + vecs[3] > 0, g, 0.0)
  return g, g * xhat


# ----------------------------------------------------------------------------
# The op.

def _stats(x2: jax.Array, impl: str, interpret: bool) -> Stats:
  """Mean and biased variance from sums of x - s, s = the first row (as layers.BatchNorm):
  no cancellation in E[x^2] - E[x]^2 when |mean| >> std, and the plain layer's numbers."""
  n = x2.shape[0]
  shift = jax.lax.stop_gradient(x2[0].astype(jnp.float32))
  if impl == "pallas":
    s, sq = _pallas_column_sums(_forward_terms, 2, [x2], [shift], interpret)
  else:
    xf = x2.astype(jnp.float32) - shift
    s, sq = jnp.sum(xf, axis=0), jnp.sum(jnp.square(xf), axis=0)
  mean = s / n
  return Stats(mean + shift, jnp.maximum(sq / n - jnp.square(mean), 0.0))


def _normalize(x2, mean, mul, bias, residual, relu: bool, dtype):
  y = (x2.astype(jnp.float32) - mean) * mul + bias
  if residual is not None:
    y = y + residual.astype(jnp.float32)
  if relu:
    y = jnp.maximum(y, 0.0)
  return y.astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7, 8, 9))
def _bn_act(x2, scale, bias, residual, relu, epsilon, impl, interpret, dtype, res_dtype):
  del res_dtype
  y, stats, _ = _forward(x2, scale, bias, residual, relu, epsilon, impl, interpret, dtype)
  return y, stats


def _forward(x2, scale, bias, residual, relu, epsilon, impl, interpret, dtype):
  stats = _stats(x2, impl, interpret)
  inv = jax.lax.rsqrt(stats.var + epsilon)
  y = _normalize(x2, stats.mean, inv * scale, bias, residual, relu, dtype)
  return y, stats, inv


def _bn_act_fwd(x2, scale, bias, residual, relu, epsilon, impl, interpret, dtype, res_dtype):
  del res_dtype
  y, stats, inv = _forward(x2, scale, bias, residual, relu, epsilon, impl, interpret, dtype)
  # y is kept only where its sign is the ReLU mask and x alone cannot give it (a residual).
  keep_y = y if (relu and residual is not None) else None
  return (y, stats), (x2, keep_y, stats.mean, inv, scale, bias)


def _bn_act_bwd(relu, epsilon, impl, interpret, dtype, res_dtype, saved, cotangents):
  del epsilon, dtype
  x2, y, mean, inv, scale, bias = saved
  g = cotangents[0]           # the statistics' cotangents are ignored: the caller stops them
  n = x2.shape[0]
  relu_from_x = relu and y is None
  if impl == "pallas":
    big = [g, x2] + ([y] if y is not None else [])
    vecs = [mean, inv] + ([inv * scale, bias] if relu_from_x else [])
    sum_dm, sum_dm_xhat = _pallas_column_sums(_backward_terms, 2, big, vecs, interpret)
  xhat = (x2.astype(jnp.float32) - mean) * inv
  dm = g.astype(jnp.float32)
  if y is not None:
    dm = jnp.where(y > 0, dm, 0.0)
  elif relu_from_x:            # the forward's formula, so the mask is the same
    dm = jnp.where((x2.astype(jnp.float32) - mean) * (inv * scale) + bias > 0, dm, 0.0)
  if impl != "pallas":
    sum_dm, sum_dm_xhat = jnp.sum(dm, axis=0), jnp.sum(dm * xhat, axis=0)
  dx = (scale * inv) * (dm - sum_dm / n - xhat * (sum_dm_xhat / n))
  dres = None if res_dtype is None else dm.astype(res_dtype)
  return dx.astype(x2.dtype), sum_dm_xhat, sum_dm, dres


_bn_act.defvjp(_bn_act_fwd, _bn_act_bwd)


def batch_norm_act(x: jax.Array, scale: jax.Array, bias: jax.Array,
                   residual: jax.Array | None = None, *, relu: bool = False,
                   epsilon: float = 1e-5, impl: str = "xla", interpret: bool = False,
                   dtype=None) -> tuple[jax.Array, Stats]:
  """relu?((x - mean) / sqrt(var + eps) * scale + bias + residual) over every axis but the last.

  Returns (y in `dtype`, default x's; the batch `Stats`). The statistics carry
  no gradient (use them under `stop_gradient`, e.g. for running averages).
  `impl="pallas"` needs row and channel counts the kernels tile
  (`pallas_blocks`) and a GPU, or `interpret=True`; otherwise use "xla".
  """
  if impl not in IMPLS:
    raise ValueError(f"batch_norm_act impl={impl!r}: use one of {IMPLS}.")
  c = x.shape[-1]
  x2 = x.reshape(-1, c)
  if impl == "pallas" and pallas_blocks(*x2.shape) is None:
    raise ValueError(f"batch_norm_act: the Pallas kernels cannot tile {x2.shape[0]} rows x {c} "
                     "channels; use impl='xla'.")
  r2 = None if residual is None else residual.reshape(-1, c)
  scale = jnp.ones((c,), jnp.float32) if scale is None else scale.astype(jnp.float32)
  bias = jnp.zeros((c,), jnp.float32) if bias is None else bias.astype(jnp.float32)
  y, stats = _bn_act(x2, scale, bias, r2, bool(relu), float(epsilon), impl, bool(interpret),
                     jnp.dtype(dtype or x.dtype), None if r2 is None else r2.dtype)
  return y.reshape(x.shape), Stats(*(jax.lax.stop_gradient(s) for s in stats))
