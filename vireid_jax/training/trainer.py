"""The main job: train with periodic evaluation, checkpoints and summaries; or evaluate.

Side effects (files, logging, checkpoints, signals) live here; the math lives
in the model, the losses and `train_step`.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from vireid_jax import config_defaults
from vireid_jax.data import datasets, sampler
from vireid_jax.models import vireid
from vireid_jax.training import checkpointing, optimizer, parallel, run_info, summaries
from vireid_jax.training import train_step as train_step_lib

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


class NonFiniteLossError(FloatingPointError):
  """A step produced NaN/Inf; its update was dropped and nothing was saved from it."""


def compute_dtype(name: str):
  if name not in DTYPES:
    raise ValueError(f"Unknown dtype {name!r}; use one of {sorted(DTYPES)}.")
  return DTYPES[name]


# ----------------------------------------------------------------------------
# Building blocks.

def build_model(config, num_classes: int) -> vireid.ViReIDNet:
  return vireid.ViReIDNet.from_config(config.model, num_classes,
                                      batch_shards=jax.device_count())


def init_variables(config, model, mesh, rng) -> dict:
  """Initialised (and optionally ImageNet-loaded) variables, replicated on `mesh`."""
  rep = parallel.replicated(mesh)
  h, w = config.data.image_size
  variables = jax.jit(
      lambda r: vireid.init_variables(model, r, (h, w), batch=2),
      out_shardings=rep)(rng)
  if config_defaults.pretrained_path(config.model):
    from vireid_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    converted = pretrained.load_resnet_weights(config.model.pretrained, int(config.model.depth))
    host = jax.tree.map(np.asarray, variables)
    host = vireid.load_pretrained(host, converted, model)
    variables = jax.jit(lambda t: t, out_shardings=rep)(host)
    logging.info("Loaded ImageNet weights into every ResNet copy from %s", config.model.pretrained)
  return variables


def build_optimizer(config, params, steps_per_epoch: int):
  labels = vireid.param_groups(params)
  return optimizer.make_optimizer(config.optim, labels, steps_per_epoch)


def derive_steps_per_epoch(config, train_set) -> int:
  if config.steps_per_epoch:
    return int(config.steps_per_epoch)
  if train_set is None:
    raise ValueError("steps_per_epoch must be set (> 0) with data.name=fake.")
  return sampler.steps_per_epoch(train_set, config.batch.identities, config.batch.instances)


def initial_train_state(config, variables, tx, mesh) -> train_step_lib.TrainState:
  """The train state of `variables`, replicated over the mesh (loss scale set by model.dtype)."""
  dtype = compute_dtype(config.model.dtype)
  return jax.jit(lambda v: train_step_lib.create_train_state(v, tx, dtype),
                 out_shardings=parallel.replicated(mesh))(variables)


def make_jitted_step(model, tx, config, mesh, steps_per_epoch: int):
  rep, data = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  step_fn = train_step_lib.make_train_step(
      model, tx, config.loss, compute_dtype(config.model.dtype),
      lr_fn=functools.partial(optimizer.learning_rates, config.optim, steps_per_epoch),
      loss_sharding=rep if mesh.size > 1 else None)
  return jax.jit(step_fn, in_shardings=(rep, data), out_shardings=(rep, rep),
                 donate_argnums=(0,))


# ----------------------------------------------------------------------------
# Input.

def train_batches(config, train_set, num_classes: int, start_step: int,
                  mesh) -> Iterator[dict]:
  """Global, device-resident batches from `start_step` on (prefetched by one)."""
  host_id, num_hosts = jax.process_index(), jax.process_count()
  if config.data.name == "fake":
    from vireid_jax.data import fake  # pylint: disable=g-import-not-at-top
    local = fake.fake_batch(config.seed, config.batch.identities,
                            config.batch.instances, tuple(config.data.image_size),
                            num_classes, host_id=host_id, num_hosts=num_hosts)
    batch = parallel.to_global_batch(local, mesh)
    while True:
      yield batch
  from vireid_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  it = pipeline.make_train_iterator(
      train_set, config.data, config.batch, seed=config.seed, start_step=start_step,
      host_id=host_id, num_hosts=num_hosts)
  pending = None
  for local in it:
    nxt = parallel.to_global_batch(local, mesh)
    if pending is not None:
      yield pending
    pending = nxt
  if pending is not None:
    yield pending


# ----------------------------------------------------------------------------
# Evaluation glue.

def local_variables(state) -> dict:
  """Parameters and BN statistics as host numpy arrays (works on multi-host)."""
  return jax.tree.map(np.asarray, {"params": state.params, "batch_stats": state.batch_stats})


def run_evaluation(config, workdir: str, model, variables, trials: int, mesh=None,
                   extract=None):
  """Runs the dataset's protocols; returns (layout, results dict)."""
  from vireid_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  return runner.evaluate(config, workdir, model, variables, trials=trials, mesh=mesh,
                         extract=extract)


def evaluation_extractor(config, model, variables):
  """The evaluation's feature extractor, compiled once for the protocols and the rank list."""
  from vireid_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  return runner.make_test_extractor(config, model, variables)


def write_rank_list(writer, step, tag, config, workdir, extract) -> None:
  """A rank-list image of `eval.rank_list_images` queries into the summaries (0 = off)."""
  from vireid_jax.tools import rank_lists  # pylint: disable=g-import-not-at-top
  rank_lists.write_summary(writer, step, tag, config, workdir, extract)


# ----------------------------------------------------------------------------
# Main entry points.

class _StopRequest:
  """Turns SIGTERM (preemption notice) into a checkpoint-then-exit at the next step."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    def handler(signum, frame):
      del frame
      logging.warning("Signal %d received: saving a checkpoint and stopping.", signum)
      self.requested = True
    try:
      self._previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
      self._previous = None
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """Trains (resuming from `workdir` if it holds checkpoints), then evaluates the best model."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  mesh = parallel.make_mesh()
  train_set = None
  if config.data.name == "fake":
    num_classes = int(config.data.fake_num_classes)
  else:
    train_set = datasets.load_train_set(config.data, workdir)
    num_classes = train_set.num_classes
    logging.info("Train set: %d classes, %d visible + %d infrared images.",
                 num_classes, len(train_set.visible), len(train_set.infrared))
  config_defaults.validate(config, num_classes=num_classes,
                           num_devices=jax.device_count(), num_hosts=jax.process_count())
  steps_per_epoch = derive_steps_per_epoch(config, train_set)
  total_steps = int(config.num_epochs) * steps_per_epoch
  run_info.write(workdir, config, extra={"num_classes": num_classes,
                                         "steps_per_epoch": steps_per_epoch,
                                         "total_steps": total_steps})

  model = build_model(config, num_classes)
  rng = jax.random.key(config.seed)
  variables = init_variables(config, model, mesh, rng)
  tx = build_optimizer(config, variables["params"], steps_per_epoch)
  state = initial_train_state(config, variables, tx, mesh)
  del variables
  logging.info("Model: %s parameters.", f"{train_step_lib.tree_param_count(state.params):,}")

  ckpt = checkpointing.Checkpointer(workdir, keep=int(config.keep_checkpoints))
  if ckpt.latest_step() is not None:
    state, restored_step = ckpt.restore(state, "latest")
    logging.info("Resumed from %s/checkpoints at step %d.", workdir, restored_step)
  start_step = int(jax.device_get(state.step))
  check_nonfinite(state, config, ckpt=None)

  step_fn = make_jitted_step(model, tx, config, mesh, steps_per_epoch)
  writer = summaries.create_writer(workdir)
  writer.write_texts(start_step, {"config": str(config)})
  hooks = summaries.progress_hooks(workdir, writer, total_steps,
                                   int(config.log_every_steps), int(config.profile_steps))
  images_per_step = 2 * config.batch.identities * config.batch.instances
  batches = train_batches(config, train_set, num_classes, start_step, mesh)
  pending: list[dict] = []
  t_last, step_last = time.time(), start_step
  evaluated_at = None

  with _StopRequest() as stop:
    for step in range(start_step, total_steps):
      state, metrics = step_fn(state, next(batches))
      pending.append(metrics)
      done = step + 1
      for h in hooks:
        h(done)
      last = done == total_steps
      if done % config.log_every_steps == 0 or last or stop.requested:
        t_now = time.time()
        log_metrics(writer, pending, done, steps_per_epoch, images_per_step,
                    (t_now - t_last) / max(1, done - step_last), total_steps)
        pending, t_last, step_last = [], t_now, done
        check_nonfinite(state, config, ckpt)
      if done % steps_per_epoch == 0 or last or stop.requested:
        epoch = done // steps_per_epoch
        check_nonfinite(state, config, ckpt)
        if stop.requested or last or epoch % max(1, config.checkpoint_every_epochs) == 0:
          ckpt.save(done, state, force=True)
        if stop.requested:
          ckpt.close()
          writer.flush()
          logging.warning("Stopped at step %d on request; run the same command to resume.", done)
          return None
        if (config.eval.every_epochs and config.data.name != "fake"
            and (epoch % config.eval.every_epochs == 0 or last)):
          variables = local_variables(state)
          extract = evaluation_extractor(config, model, variables)
          _, res = run_evaluation(config, workdir, model, variables,
                                  trials=int(config.eval.train_trials), extract=extract)
          write_eval_summaries(writer, done, res, prefix="eval")
          write_rank_list(writer, done, "eval/rank_list", config, workdir, extract)
          rank1 = headline_rank1(res)
          if ckpt.save_if_best(done, state, rank1):
            logging.info("Epoch %d: new best Rank-1 %.2f%% (saved to best/).", epoch, rank1)
          evaluated_at = done
  ckpt.wait()
  writer.flush()
  if config.data.name == "fake":
    ckpt.close()
    return None
  del evaluated_at
  # Final report on the best checkpoint, with every trial.
  which = "best" if ckpt.best_step() is not None else "latest"
  state, used = ckpt.restore(state, which)
  ckpt.close()
  return report(config, workdir, model, state, used, which, writer)


def abstract_train_state(config, model, steps_per_epoch: int, mesh):
  """Shapes, dtypes and shardings of the train state: what a restore needs, nothing computed."""
  size = tuple(config.data.image_size)

  def make_state(r):
    v = vireid.init_variables(model, r, size, batch=2)
    return train_step_lib.create_train_state(
        v, build_optimizer(config, v["params"], steps_per_epoch),
        compute_dtype(config.model.dtype))

  abstract = jax.eval_shape(make_state, jax.random.key(0))
  rep = parallel.replicated(mesh)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep), abstract)


def restore_for_evaluation(config, workdir: str, model, steps_per_epoch: int, which,
                           mesh) -> tuple[Any, int, str]:
  """Restores `which` (best | latest | a step) of `workdir`: (state, step, what was used).

  "best" falls back to the latest checkpoint when the run never evaluated.
  """
  abstract = abstract_train_state(config, model, steps_per_epoch, mesh)
  ckpt = checkpointing.Checkpointer(workdir, keep=int(config.keep_checkpoints))
  try:
    which = str(which)
    if which == "best" and ckpt.best_step() is None:
      logging.warning("No best checkpoint (no evaluation during training): using the latest.")
      which = "latest"
    state, step = ckpt.restore(abstract, which)
  finally:
    ckpt.close()
  return state, step, which


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """`--config.mode=eval`: restores the best (or named) checkpoint and reports."""
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")) and not os.path.isdir(
      os.path.join(workdir, "best")):
    raise FileNotFoundError(
        f"No checkpoints in {workdir}: train first (--config.mode=train) with this "
        "--workdir, or point --workdir at a finished run.")
  mesh = parallel.make_mesh()
  if config.data.name == "fake":
    raise ValueError("data.name=fake has no test set to evaluate on.")
  train_set = datasets.load_train_set(config.data, workdir)
  model = build_model(config, train_set.num_classes)
  steps_per_epoch = derive_steps_per_epoch(config, train_set)
  state, used, which = restore_for_evaluation(config, workdir, model, steps_per_epoch,
                                              config.eval.checkpoint, mesh)
  writer = summaries.create_writer(workdir)
  return report(config, workdir, model, state, used, which, writer)


def report(config, workdir, model, state, step, which, writer) -> dict:
  from vireid_jax.evaluation import report as report_lib  # pylint: disable=g-import-not-at-top
  variables = local_variables(state)
  extract = evaluation_extractor(config, model, variables)
  layout, results = run_evaluation(config, workdir, model, variables,
                                   trials=int(config.eval.trials), extract=extract)
  write_rank_list(writer, step, "test/rank_list", config, workdir, extract)
  dataset = config.data.name if config.data.name != "synthetic" else f"synthetic_{layout}"
  table = report_lib.format_table(results, dataset)
  logging.info("Results (%s checkpoint, step %d):\n%s", which, step, table)
  print(f"\nResults of {workdir} ({which} checkpoint, step {step}):\n{table}", flush=True)
  if jax.process_index() == 0:
    path = os.path.join(workdir, report_lib.results_filename(config.eval))
    report_lib.write_results_json(path, dataset, results,
                                  report_lib.evaluation_settings(config.eval, which, step))
    logging.info("Results written to %s.", path)
  write_eval_summaries(writer, step, results, prefix="test")
  writer.flush()
  return results


# ----------------------------------------------------------------------------
# Metrics helpers.

def headline_rank1(results: dict) -> float:
  for key in ("all_single", "visible_to_thermal"):
    if key in results:
      return float(results[key]["rank1"])
  return float(next(iter(results.values()))["rank1"])


def write_eval_summaries(writer, step: int, results: dict, prefix: str) -> None:
  scalars = {}
  for proto, r in results.items():
    for k in ("rank1", "rank10", "rank20", "mAP", "mINP"):
      if k in r:
        scalars[f"{prefix}/{proto}/{k}"] = r[k]
  writer.write_scalars(step, scalars)


def log_metrics(writer, pending: list[dict], step: int, steps_per_epoch: int,
                images_per_step: int, sec_per_step: float, total_steps: int) -> None:
  fetched = jax.device_get(pending)
  mean = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
  mean["train/step_time_s"] = sec_per_step
  mean["train/images_per_s"] = images_per_step / max(sec_per_step, 1e-9)
  mean["train/epoch"] = step / steps_per_epoch
  writer.write_scalars(step, mean)
  eta = (total_steps - step) * sec_per_step
  logging.info(
      "step %d/%d (epoch %.2f) loss %.4f id %.4f tri %.4f dist %s | lr %.4g | "
      "%.3f s/step, %.0f img/s, ETA %s", step, total_steps, step / steps_per_epoch,
      mean.get("loss/total", float("nan")), mean.get("loss/id", float("nan")),
      mean.get("loss/tri", float("nan")),
      f"{mean['loss/dist']:.4f}" if "loss/dist" in mean else "-",
      mean.get("train/lr_pretrained", float("nan")), sec_per_step,
      mean["train/images_per_s"], time.strftime("%H:%M:%S", time.gmtime(eta)))


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
      "Lower the learning rates (optim.lr_new, "
      "optim.lr_pretrained), set model.dtype=float32, or set "
      "optim.skip_nonfinite=True to skip such steps.")
