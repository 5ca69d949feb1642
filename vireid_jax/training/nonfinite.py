"""Stopping (or warning) when a step produced NaN/Inf: one clear message naming the terms."""

from __future__ import annotations

import jax
from absl import logging

from vireid_jax.errors import UserError
from vireid_jax.training import train_step as train_step_lib


class NonFiniteLossError(UserError, FloatingPointError):
  """A step produced NaN/Inf; its update was dropped and nothing was saved from it."""


def check_nonfinite(state, config, ckpt) -> None:
  """Stops the run on a NaN/Inf step unless `optim.skip_nonfinite`."""
  count = int(jax.device_get(state.nonfinite_count))
  if not count:
    return
  first = int(jax.device_get(state.first_nonfinite_step))
  terms = train_step_lib.describe_nonfinite(int(jax.device_get(state.first_nonfinite_terms)))
  # Steps are numbered as in the logs and checkpoints: step n is the update from n-1 to n.
  if config.optim.skip_nonfinite:
    logging.warning("%d step(s) skipped for NaN/Inf so far (first at step %d: %s).",
                    count, first + 1, ", ".join(terms))
    return
  last_good = ""
  if ckpt is not None:
    ckpt.wait()
    if ckpt.latest_step() is not None:
      last_good = f" (step {ckpt.latest_step()} in {ckpt.workdir}/checkpoints)"
  raise NonFiniteLossError(
      f"Non-finite values at step {first + 1} (the update from step {first}) in: "
      f"{', '.join(terms)}. The update of that step was dropped and no checkpoint was "
      f"written after it; the last good checkpoint{last_good} is untouched. "
      "Lower the learning rates (optim.lr_new, optim.lr_pretrained), set "
      "model.dtype=float32, or set optim.skip_nonfinite=True to skip such steps.")
