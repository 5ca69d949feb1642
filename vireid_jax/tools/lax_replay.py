"""A function replayed as the lax primitives it traces to: what the exported files are made of.

jax2onnx converts a function by tracing it with its own stand-ins for many
jax.numpy and flax functions, and some stand-ins mis-handle our network
(flax's max_pool called positionally, jnp.power with a symbolic batch).
Tracing the function here first and replaying its jaxpr hands the converter
the primitives XLA compiles, one by one: nested jaxprs (jit, custom_jvp) are
inlined, and (with `slice_max_pools`) a max pool (`reduce_window_max`, which
the converter turns into a pooling that ONNX Runtime rejects) becomes the
maximum of strided slices of its -inf-padded input: the same numbers exactly.
Equations the outputs do not depend on are skipped, so an exported file holds
only the weights its features read (no classifiers, no unused branches).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jax_core

# Primitives that wrap a jaxpr run as it is (inference only: custom derivatives do not matter).
INLINED = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
           "remat", "checkpoint")


def replay(fn: Callable[..., Any], weights: Any, *specs: jax.ShapeDtypeStruct,
           slice_max_pools: bool = False) -> Callable:
  """`lambda *inputs: fn(weights, *inputs)` as lax primitives; `specs` give the inputs' shapes.

  The weights are traced as arguments and bound once, so every array is one
  constant of the replayed function however often the network reads it.
  """
  leaves, tree = jax.tree.flatten(weights)
  closed = jax.make_jaxpr(lambda ws, *xs: fn(jax.tree.unflatten(tree, ws), *xs))(leaves, *specs)
  needed = live_equations(closed.jaxpr)

  def replayed(*inputs):
    out = evaluate(closed.jaxpr, closed.consts, *leaves, *inputs, live=needed,
                   slice_max_pools=slice_max_pools)
    return out[0] if len(out) == 1 else tuple(out)

  return replayed


def live_equations(jaxpr: jax_core.Jaxpr) -> list[bool]:
  """For each equation of `jaxpr`, whether an output (or an effect) depends on it."""
  wanted = {v for v in jaxpr.outvars if not isinstance(v, jax_core.Literal)}
  live = [False] * len(jaxpr.eqns)
  for i in reversed(range(len(jaxpr.eqns))):
    eqn = jaxpr.eqns[i]
    if eqn.effects or any(v in wanted for v in eqn.outvars):
      live[i] = True
      wanted.update(v for v in eqn.invars if not isinstance(v, jax_core.Literal))
  return live


def evaluate(jaxpr: jax_core.Jaxpr, consts, *args, live=None, slice_max_pools=False) -> list:
  """Binds the (`live`) equations of `jaxpr` one by one (see the module docstring)."""
  env = {}

  def read(v):
    return v.val if isinstance(v, jax_core.Literal) else env[v]

  for var, value in itertools.chain(zip(jaxpr.constvars, consts), zip(jaxpr.invars, args)):
    env[var] = value
  for i, eqn in enumerate(jaxpr.eqns):
    if live is not None and not live[i]:
      continue
    inputs = [read(v) for v in eqn.invars]
    name = eqn.primitive.name
    inner = next((eqn.params[k] for k in ("jaxpr", "call_jaxpr", "fun_jaxpr") if k in eqn.params),
                 None)
    if name in INLINED and inner is not None:
      if isinstance(inner, jax_core.ClosedJaxpr):
        outputs = evaluate(inner.jaxpr, inner.consts, *inputs, slice_max_pools=slice_max_pools)
      else:
        outputs = evaluate(inner, (), *inputs, slice_max_pools=slice_max_pools)
    elif name == "reduce_window_max" and slice_max_pools:
      outputs = [max_pool_by_slices(inputs[0], **eqn.params)]
    else:
      outputs = eqn.primitive.bind(*inputs, **eqn.primitive.get_bind_params(eqn.params))
      if not eqn.primitive.multiple_results:
        outputs = [outputs]
    for var, value in zip(eqn.outvars, outputs):
      env[var] = value
  return [read(v) for v in jaxpr.outvars]


def max_pool_by_slices(x: jax.Array, *, window_dimensions, window_strides, padding,
                       base_dilation, window_dilation) -> jax.Array:
  """`lax.reduce_window_max` as the maximum of strided slices of the -inf-padded input.

  The padding is concatenated, not `lax.pad`ded: the converter's Pad needs a
  constant batch size.
  """
  if set(base_dilation) != {1} or set(window_dilation) != {1}:
    raise NotImplementedError("Dilated max pools are not supported by the export.")
  for axis, (low, high) in enumerate(padding):
    if low or high:
      edge = lax.full_like(lax.slice_in_dim(x, 0, 1, axis=axis), -jnp.inf)
      x = lax.concatenate([edge] * low + [x] + [edge] * high, axis)
  axes = [a for a, (w, s) in enumerate(zip(window_dimensions, window_strides)) if w > 1 or s > 1]
  out = None
  for offsets in itertools.product(*(range(window_dimensions[a]) for a in axes)):
    part = x
    for axis, offset in zip(axes, offsets):
      size, stride = window_dimensions[axis], window_strides[axis]
      count = (x.shape[axis] - size) // stride + 1
      part = lax.slice_in_dim(part, offset, offset + (count - 1) * stride + 1, stride, axis=axis)
    out = part if out is None else lax.max(out, part)
  return out
