"""The training loop: steps, and at their due steps the log line, evaluations and checkpoints.

Steps are counted as the logs and checkpoints count them: step n is the
state after n updates. A SIGTERM stops the loop after the step in flight with
a checkpoint (`STOPPED_EXIT_STATUS`); the same command resumes it.
"""

from __future__ import annotations

import contextlib
import gc
import time

import jax
from absl import logging

from vireid_jax.training import nonfinite, periodic, periodic_eval, profiling, progress, setup
from vireid_jax.training.startup import RunPlan

# Exit status of a run stopped by SIGTERM after saving: run the same command again.
# 128 + SIGTERM, what a shell reports for a process the signal ended.
STOPPED_EXIT_STATUS = 143


def train_loop(config, plan: RunPlan, state, ckpt, writer, mesh,
               batch_source: setup.BatchSource | None = None, extract=None) -> int:
  """Steps from the start step to the end; returns 0, or STOPPED_EXIT_STATUS on SIGTERM."""
  total = plan.total_steps
  log_every = int(config.log_every_steps)
  save_every = int(config.checkpoint_every_epochs) * plan.steps_per_epoch
  rank_list = int(config.eval.rank_list_images)
  evaluations = periodic_eval.periodic_evaluations(config, plan, extract)
  nonfinite.check_nonfinite(state, config, ckpt=None)
  for evaluation in evaluations:
    if plan.start_step and evaluation.due(plan.start_step):
      evaluation.run(plan.start_step, state, writer, ckpt, rank_list)   # due when it stopped
  if plan.start_step >= total:
    return 0

  step_fn = make_step(config, plan, mesh)
  line = progress.ProgressLine(config, total, plan.steps_per_epoch)
  device_batches = setup.global_batches(batch_source or default_batch_source(config, plan),
                                        plan.start_step, mesh, int(config.data.device_prefetch))
  batches = line.timed(device_batches)
  profiler = profiling.Profiler(plan.workdir, plan.start_step, int(config.profile_steps))
  with (periodic.StopRequest(plan.start_step) as stop, collector_quieted() as quiet,
        contextlib.closing(device_batches)):
    for step in range(plan.start_step, total):
      profiler.at(step)
      state, metrics = step_fn(state, next(batches))
      if step == plan.start_step:
        quiet()                                # after the first step, which compiles
      done = step + 1
      line.add(metrics, done)
      stopping = stop.should_stop(done)
      log_now = periodic.itstime(done, log_every, total, stopping=stopping)
      due = [] if stopping else [e for e in evaluations if e.due(done)]
      save_now = periodic.itstime(done, save_every, total, stopping=stopping)
      if log_now:
        line.write(writer, done)
      if log_now or due or save_now:
        nonfinite.check_nonfinite(state, config, ckpt)
      for evaluation in due:
        evaluation.run(done, state, writer, ckpt, rank_list)
        quiet()
        line.restart_clock(done)
        stopping = stop.should_stop(done)      # a signal that came during the evaluation
        save_now = save_now or stopping
      if save_now:
        line.pause(save_checkpoint(ckpt, done, state, plan.record))
      if stopping:
        return stopped(ckpt, done)
    profiler.stop()
    if stop.should_stop(total):
      return stopped(ckpt, total)
  return 0


@contextlib.contextmanager
def collector_quieted():
  """Yields `quiet()`, which moves every object alive into the garbage collector's frozen set.

  The start-up leaves millions of long-lived Python objects (the traced model,
  the compiled step, the dataset's records); each full collection of Python's
  cyclic garbage collector walks them all and stalls the loop for 0.1-0.3 s
  every few hundred steps. Frozen, they are skipped; thawed when the loop ends,
  so that they can be freed then.
  """
  def quiet():
    gc.collect()
    gc.freeze()
  try:
    yield quiet
  finally:
    gc.unfreeze()


def make_step(config, plan: RunPlan, mesh):
  tx = setup.build_optimizer(config, plan.abstract_state.params, plan.steps_per_epoch)
  return setup.make_jitted_step(plan.model, tx, config, mesh, plan.steps_per_epoch)


def default_batch_source(config, plan: RunPlan) -> setup.BatchSource:
  """The dataset's tf.data pipeline, or random batches for data.name=fake."""
  if plan.train_set is None:
    return setup.fake_batches(config, plan.num_classes)
  return setup.dataset_batches(config, plan.train_set)


def save_checkpoint(ckpt, step: int, state, record) -> float:
  """Saves asynchronously; returns the seconds the save held the loop up."""
  jax.block_until_ready(state)    # the steps in flight first: they are training time
  started = time.perf_counter()
  ckpt.save(step, state, record.to_json())
  return time.perf_counter() - started


def stopped(ckpt, step: int) -> int:
  ckpt.wait()
  logging.warning("Stopped at step %d with a checkpoint; run the same command to resume.", step)
  return STOPPED_EXIT_STATUS
