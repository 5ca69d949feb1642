"""A `jax.profiler` trace of a few training steps (`--config.profile_steps=N`)."""

from __future__ import annotations

import jax
from absl import logging
from etils import epath

# profile_steps > 0: the trace starts this many steps after the run's start step.
PROFILE_FIRST_STEP = 10


class Profiler:
  """A trace of `steps` steps into WORKDIR/profile, PROFILE_FIRST_STEP steps after the start."""

  def __init__(self, workdir: epath.Path, start_step: int, steps: int):
    self.dir, self.steps, self.active = str(workdir / "profile"), steps, False
    self.first = start_step + PROFILE_FIRST_STEP

  def at(self, step: int) -> None:
    if self.steps <= 0 or jax.process_index() != 0:
      return
    if step == self.first:
      jax.profiler.start_trace(self.dir)
      self.active = True
    elif self.active and step == self.first + self.steps:
      self.stop()

  def stop(self) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False
      logging.info("profile of %d steps written to %s", self.steps, self.dir)
