"""Model FLOPs of a traced JAX function: convolutions and matmuls, counted from its jaxpr.

Why not XLA's `cost_analysis()`: on GPU it leaves out the convolutions that run
as cuDNN custom calls (a ResNet-50 step of 64 images came out at 24 GFLOP, about
a hundredth of the real work), so achieved TFLOP/s and the fraction of peak were
meaningless there. The jaxpr is the same on every backend, and counting only
`conv_general_dilated` and `dot_general` (2 FLOPs per multiply-add) is what
`torch.utils.flop_counter` does, so the JAX and PyTorch columns compare.

Counting rules:
- dot_general: 2 x output elements x the product of the contracted dimensions.
- conv_general_dilated: 2 x output elements x the kernel's input features x its
  spatial taps, divided by the input dilation (a transposed convolution's
  inserted zeros are not work: the data gradient of a stride-2 convolution costs
  the same as its forward pass, as torch counts it).
- Nested jaxprs (jit, custom VJP/JVP, remat) are walked; a scan's body counts
  `length` times; of a cond's branches the most expensive counts; a while loop's
  body counts once (its trip count is not static).
"""

from __future__ import annotations

import math
from typing import Any


def _dot_flops(eqn) -> float:
  (lhs_contract, _), _ = eqn.params["dimension_numbers"]
  lhs_shape = eqn.invars[0].aval.shape
  out_shape = eqn.outvars[0].aval.shape
  return 2.0 * math.prod(out_shape) * math.prod(lhs_shape[d] for d in lhs_contract)


def _conv_flops(eqn) -> float:
  dims = eqn.params["dimension_numbers"]
  rhs_shape = eqn.invars[1].aval.shape
  out_shape = eqn.outvars[0].aval.shape
  rhs_spec = dims.rhs_spec            # (out feature, in feature, *spatial) dimension indices
  taps = rhs_shape[rhs_spec[1]] * math.prod(rhs_shape[d] for d in rhs_spec[2:])
  dilation = math.prod(eqn.params.get("lhs_dilation") or (1,))
  return 2.0 * math.prod(out_shape) * taps / dilation


def _sub_jaxprs(value: Any):
  """The jaxprs inside one equation parameter (a jaxpr, a closed jaxpr, or a tuple of them)."""
  if hasattr(value, "jaxpr") and hasattr(value, "consts"):      # ClosedJaxpr
    return [value.jaxpr]
  if hasattr(value, "eqns"):                                     # Jaxpr
    return [value]
  if isinstance(value, (tuple, list)):
    found = []
    for v in value:
      found += _sub_jaxprs(v)
    return found
  return []


def _count(jaxpr, totals: dict[str, float], weight: float) -> None:
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      totals["matmul"] += weight * _dot_flops(eqn)
    elif name == "conv_general_dilated":
      totals["convolution"] += weight * _conv_flops(eqn)
    if name == "cond":
      # One branch runs: count the costliest.
      best = None
      for branch in _sub_jaxprs(eqn.params["branches"]):
        t = {"convolution": 0.0, "matmul": 0.0}
        _count(branch, t, weight)
        if best is None or sum(t.values()) > sum(best.values()):
          best = t
      for k, v in (best or {}).items():
        totals[k] += v
      continue
    inner_weight = weight * (eqn.params.get("length", 1) if name == "scan" else 1)
    for value in eqn.params.values():
      for sub in _sub_jaxprs(value):
        _count(sub, totals, inner_weight)


def jaxpr_flops(closed_jaxpr) -> dict[str, float]:
  """{"convolution", "matmul", "total"} FLOPs of one run of a (closed) jaxpr."""
  totals = {"convolution": 0.0, "matmul": 0.0}
  _count(getattr(closed_jaxpr, "jaxpr", closed_jaxpr), totals, 1.0)
  totals["total"] = totals["convolution"] + totals["matmul"]
  return totals
