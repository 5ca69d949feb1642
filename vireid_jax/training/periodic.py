"""When to act during training: one rule for every periodic action, and stop requests.

Steps are counted as the logs and checkpoints count them: step n is the state
after n updates, so the first action of an `every`-periodic one is at step
`every`, and the last step of the run always acts.
"""

from __future__ import annotations

import signal
import threading

import jax
from absl import logging
from jax.experimental import multihost_utils


def itstime(step: int, every: int, total: int, *, stopping: bool = False) -> bool:
  """Whether an action repeated every `every` steps (0 = never) is due at `step`.

  Due every `every` steps, at the last step (`total`) and when the run is
  `stopping` early; never when `every` is 0.
  """
  if every <= 0:
    return False
  return step % every == 0 or step == total or stopping


class StopRequest:
  """Turns SIGTERM (a preemption notice) into a stop at the next step, on every host alike.

  One process: a signal handler sets a flag, read after every step (a host
  read, no device round trip).

  Several processes: JAX's preemption service (started by
  `jax.distributed.initialize`) installs its own SIGTERM handler on every
  process; no Python handler is installed then, as it would replace JAX's. A
  signal to any process reaches all of them through the coordination service,
  which picks the step after the furthest one any process has reported, so
  every process stops after that same step and saves it. Each process reports
  its steps here, once per step and in order: counted from this start (1, 2,
  ...), so that a notice that comes before the first step stops the run after
  it, also when resuming. Nothing else may report to JAX (see
  `checkpointing._Manager`). A signal outside the training loop (compiling,
  the final report) is taken as a stop at the first step, or ignored once the
  last step has run: the run then finishes.
  """

  def __init__(self, start_step: int = 0):
    self._start = start_step
    self._requested = False
    self._previous = None
    self._multihost = jax.process_count() > 1
    self._last_synced = start_step

  def __enter__(self) -> StopRequest:
    if not self._multihost and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handler)
    return self

  def __exit__(self, *exc) -> bool:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False

  def _handler(self, signum, frame) -> None:
    del frame
    if not self._requested:
      logging.warning("Signal %d received: saving a checkpoint and stopping.", signum)
    self._requested = True

  def should_stop(self, step: int) -> bool:
    """Whether to stop after `step`; every host asks at the same steps.

    Several processes agree once per step (asking again at the same step
    repeats the answer); one process reads its flag, also set mid-step.
    """
    if self._multihost and step > self._last_synced:
      self._last_synced = step
      try:
        reached = multihost_utils.reached_preemption_sync_point(step - self._start)
      except RuntimeError:   # the preemption service is off (jax_enable_preemption_service)
        reached = False
      if reached and not self._requested:
        logging.warning("A host received a stop signal: saving a checkpoint at step %d and "
                        "stopping on every host.", step)
      self._requested = self._requested or reached
    return self._requested
