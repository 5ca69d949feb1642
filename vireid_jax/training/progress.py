"""What the console shows of a run: its start-up summary and one progress line per log step."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator

import jax
import numpy as np
from absl import logging

from vireid_jax import config_defaults, console
from vireid_jax.data import datasets
from vireid_jax.evaluation import suites
from vireid_jax.losses import objective
from vireid_jax.training import run_info


def log_start(config, plan) -> None:
  """A few lines: devices, workdir, config changes, data, model, schedule, summaries."""
  devices = jax.devices()
  logging.info("vireid_jax on %d %s device(s) in %d process(es), JAX %s", len(devices),
               devices[0].platform, jax.process_count(), jax.__version__)
  state = (f"resuming at step {plan.start_step} of {plan.total_steps}" if plan.start_step
           else "new run")
  logging.info("workdir   %s (%s)", plan.workdir, state)
  changes = run_info.changed_keys(config_defaults.base_config().to_dict(), config.to_dict())
  changes = [f"{k}={config_defaults.get_key(config, k)!r}" for k in changes]
  text = textwrap.fill(" ".join(changes), width=96, initial_indent="config    ",
                       subsequent_indent="          ") if changes else "config    the defaults"
  for line in text.splitlines():
    logging.info("%s", line)
  if plan.train_set is not None:
    logging.info("data      %s at %s: %d training ids, %d visible + %d infrared images; %s",
                 suites.dataset_label(config.data, plan.suite),
                 datasets.layout_and_root(config.data, plan.workdir)[1], plan.num_classes,
                 len(plan.train_set.visible), len(plan.train_set.infrared),
                 plan.suite.describe(plan.test_set))
  else:
    logging.info("data      random batches (data.name=fake), %d classes", plan.num_classes)
  params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(plan.abstract_state.params))
  p, k = int(config.batch.identities), int(config.batch.instances)
  logging.info("model     ResNet-%d, %.1fM parameters, %s compute; batch %d ids x %d images x 2 "
               "modalities = %d", int(config.model.depth), params / 1e6, config.model.dtype, p, k,
               2 * p * k)
  logging.info("schedule  %d steps = %d epochs x %d; evaluation every %s, checkpoint every %d "
               "epoch(s)", plan.total_steps, int(config.num_epochs), plan.steps_per_epoch,
               f"{config.eval.every_epochs} epoch(s)" if int(config.eval.every_epochs) and plan.suite
               else "- (off)", int(config.checkpoint_every_epochs))
  logging.info("summaries %s/metrics.jsonl; TensorBoard: tensorboard --logdir %s",
               plan.workdir, plan.workdir)


class ProgressLine:
  """One line per log step: step, epoch, losses, lr, speed and ETA; the same numbers to summaries.

  The first step (which compiles) is timed on its own and left out of the
  speed, as are evaluations (`restart_clock`) and checkpoint saves (`pause`).
  `train/host_cpu_cores` is the CPU time of this process (the input
  pipeline's threads included) over the wall time of the interval: how many
  cores the job keeps busy. `train/input_wait` is the part of the interval
  the loop spent waiting for its next batch (`timed`): near 0 when the
  accelerator sets the pace, large when the input pipeline does.
  """

  def __init__(self, config, total_steps: int, steps_per_epoch: int):
    self.total = total_steps
    self.steps_per_epoch = steps_per_epoch
    self.images_per_step = 2 * int(config.batch.identities) * int(config.batch.instances)
    self.pending: list[dict] = []
    self.t_created = time.time()
    self.t_last, self.step_last, self.cpu_last, self.paused = None, None, None, 0.0
    self.waited = 0.0

  def timed(self, batches: Iterator[dict]) -> Iterator[dict]:
    """`batches`, counting the time spent waiting for each into the interval's input wait."""
    started = time.perf_counter()
    for batch in batches:
      self.waited += time.perf_counter() - started
      yield batch
      started = time.perf_counter()

  def add(self, metrics: dict, step: int) -> None:
    self.pending.append(metrics)
    if self.t_last is None:
      jax.block_until_ready(metrics)
      logging.info("train step compiled and run once in %.1f s (%.0f s after the command started)",
                   time.time() - self.t_created, console.seconds_since_process_start())
      self.restart_clock(step)

  def restart_clock(self, step: int) -> None:
    self.t_last, self.step_last, self.paused, self.waited = time.time(), step, 0.0, 0.0
    self.cpu_last = time.process_time()

  def pause(self, seconds: float) -> None:
    """Leaves `seconds` (a checkpoint save) out of the speed of the current interval."""
    self.paused += seconds

  def write(self, writer, step: int) -> None:
    fetched = jax.device_get(self.pending)
    self.pending = []
    mean = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    steps = step - self.step_last
    wall = time.time() - self.t_last
    cpu = time.process_time() - self.cpu_last
    sec_per_step = (wall - self.paused) / steps if steps > 0 else float("nan")
    paused, waited = self.paused, self.waited
    self.restart_clock(step)
    if steps > 0:
      mean["train/step_time_s"] = sec_per_step
      mean["train/images_per_s"] = self.images_per_step / max(sec_per_step, 1e-9)
      mean["train/host_cpu_cores"] = cpu / max(wall, 1e-9)
      mean["train/input_wait"] = min(1.0, waited / max(wall - paused, 1e-9))
      if paused:
        mean["time/save_s"] = paused
    mean["train/epoch"] = step / self.steps_per_epoch
    writer.write_scalars(step, mean)
    speed = (f" | {sec_per_step:.3f} s/step, {mean['train/images_per_s']:.0f} img/s, input wait "
             f"{100 * mean['train/input_wait']:.0f}%, ETA "
             f"{format_duration((self.total - step) * sec_per_step)}" if steps > 0 else "")
    logging.info("step %*d/%d | epoch %.2f | loss %.4f (%s) | lr %.3g%s",
                 len(str(self.total)), step, self.total, step / self.steps_per_epoch,
                 mean.get("loss/total", float("nan")), loss_groups(mean),
                 mean.get("train/lr_new", float("nan")), speed)


def loss_groups(mean: dict[str, float]) -> str:
  """`id 2.535, tri 0.867, intra 6.545, dist 1.9678`: each group of `objective.TERMS` summed."""
  groups: dict[str, tuple[float, int]] = {}
  for term in objective.TERMS:
    value = mean.get(f"loss/{term.name}")
    if value is None or term.group == "total":
      continue
    total, digits = groups.get(term.group, (0.0, term.digits))
    groups[term.group] = (total + value, digits)
  return ", ".join(f"{group} {value:.{digits}f}" for group, (value, digits) in groups.items())


def format_duration(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
