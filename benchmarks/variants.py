"""Named variants of the training step, for side-by-side timing (`step_ab.py`, `profile_step.py`).

A variant is `NAME=ITEM;ITEM;...`, each item one of
  config.KEY=VALUE  a config override (VALUE a Python literal, else a string),
  xla.OPTION=VALUE  an XLA debug option for this executable only, passed to
                    `compile(compiler_options=...)` (VALUE may be empty, e.g.
                    `xla.xla_gpu_enable_command_buffer=` turns CUDA graphs off),
  remat=POLICY      `jax.checkpoint` around the model's forward pass, saving
                    only what POLICY names (`conv`: convolution, matmul and
                    reduction outputs; the elementwise work, BatchNorm's
                    normalisation and the ReLUs, is recomputed in the backward
                    pass instead of being stored).
The plain step is `base`. Several variants of one process share the GPU, the
batches and the compiled-kernel caches, so their times compare closely.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from benchmarks import common
from vireid_jax.training import setup

SAVED_BY_POLICY = {
    "conv": ("conv_general_dilated", "dot_general", "reduce_sum", "reduce_max"),
}


@dataclasses.dataclass(frozen=True)
class Variant:
  name: str
  config: tuple[str, ...] = ()                 # "KEY=VALUE" overrides
  compiler_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  remat: str | None = None

  def apply(self, config) -> dict:
    """Sets this variant's config overrides; returns them."""
    return common.set_keys(config, self.config)

  def model(self, config, num_classes: int):
    model = setup.build_model(config, num_classes)
    return RematModel(model, self.remat) if self.remat else model

  def describe(self) -> dict[str, Any]:
    return {"name": self.name, "config": list(self.config),
            "compiler_options": dict(self.compiler_options), "remat": self.remat}


BASE = Variant("base")


def parse(spec: str) -> Variant:
  """`NAME=ITEM;ITEM...` (see the module docstring) -> Variant."""
  name, sep, body = spec.partition("=")
  if not sep or not name.strip():
    raise ValueError(f"--variant {spec!r}: write NAME=ITEM;ITEM, e.g. "
                     "'nograph=xla.xla_gpu_enable_command_buffer='.")
  config, options, remat = [], {}, None
  for item in filter(None, (i.strip() for i in body.split(";"))):
    kind, _, rest = item.partition(".")
    if item.startswith("remat="):
      remat = item.partition("=")[2]
      if remat not in SAVED_BY_POLICY:
        raise ValueError(f"--variant {spec!r}: remat={remat!r}; use one of "
                         f"{sorted(SAVED_BY_POLICY)}.")
    elif kind == "config" and "=" in rest:
      config.append(rest)
    elif kind == "xla" and "=" in rest:
      key, _, value = rest.partition("=")
      options[key] = option_value(value)
    else:
      raise ValueError(f"--variant {spec!r}: item {item!r} is not config.KEY=VALUE, "
                       "xla.OPTION=VALUE or remat=POLICY.")
  return Variant(name.strip(), tuple(config), options, remat)


def option_value(text: str):
  """An XLA option's value as `compile(compiler_options=...)` wants it: bool, int, float or str."""
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def add_flag(parser, single: bool = False) -> None:
  parser.add_argument("--variant", action="append", default=None, metavar="NAME=ITEM;ITEM",
                      help=("a step variant: config.KEY=VALUE, xla.OPTION=VALUE, remat=conv "
                            "items separated by ';'" + ("" if single else "; repeatable")))


def saving_policy(name: str):
  """A `jax.checkpoint` policy that saves the outputs of the primitives POLICY names."""
  saved = SAVED_BY_POLICY[name]

  def policy(prim, *_, **__) -> bool:
    return prim.name in saved

  return policy


class RematModel:
  """A flax module whose `apply` runs under `jax.checkpoint` (everything else passes through)."""

  def __init__(self, model, policy: str):
    self._model, self._policy = model, saving_policy(policy)

  def apply(self, variables, *args, **kwargs):
    run = jax.checkpoint(lambda v, *a: self._model.apply(v, *a, **kwargs), policy=self._policy)
    return run(variables, *args)

  def __getattr__(self, name):
    return getattr(self._model, name)
