"""The training loop, and the evaluation of a finished run.

`train_and_evaluate` works in this order, so that a start that is refused
leaves the workdir as it was:

  1. read and check the training set and the test set, and the config
     against them (number of identities, devices, hosts);
  2. build the model and compare an existing checkpoint with it;
  3. only then write: `config.json`, `run_info.jsonl`, summaries, checkpoints;
  4. train, with one progress line every `log_every_steps`, an evaluation
     every `eval.every_epochs` and a checkpoint every
     `checkpoint_every_epochs` (and at the last step, and on a stop request);
  5. report on the best checkpoint with every gallery trial (`results.json`).

Resuming: every checkpoint carries the run's evaluation history (`RunRecord`).
A resumed run continues from the latest checkpoint at the same position of
the data stream and the schedule, runs an evaluation that was due at that
step if the record lacks it (the run was stopped or killed during or right
before it), and finishes with the report if it is missing, so it ends with
the evaluations, best checkpoint and results of an uninterrupted run.

The pieces, one job each: `startup` (the checks and the plan), `loop` (the
steps), `periodic_eval` (evaluations during training), `reporting` (the
report, and evaluating a finished run), `progress` (the console), `profiling`
and `nonfinite`. Side effects live in them; the math lives in the model, the
losses and `train_step`.
"""

from __future__ import annotations

import jax
import ml_collections

from vireid_jax import fileio
from vireid_jax.evaluation import evaluators
from vireid_jax.training import checkpointing, loop, parallel, progress, reporting, run_info
from vireid_jax.training import setup, startup, summaries


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: fileio.PathLike, *,
                       batch_source: setup.BatchSource | None = None) -> int:
  """Trains (resuming from `workdir` if it holds checkpoints), then reports on the best model.

  Args:
    config: the run's config (`config_defaults.base_config()` keys).
    workdir: where everything is written: a local folder or a URL (gs://BUCKET/...).
    batch_source: host-local batches by step; by default the dataset's
      tf.data pipeline (or random batches for data.name=fake).
  Returns:
    The exit status: 0 when done, loop.STOPPED_EXIT_STATUS when stopped by SIGTERM.
  """
  workdir = fileio.as_path(workdir)    # the one conversion: epath.Path from here on
  mesh = parallel.make_mesh()
  plan = startup.plan_run(config, workdir, mesh)
  if reporting.completed_report(config, plan) is not None:
    return 0
  run_info.write(workdir, config, extra={"num_classes": plan.num_classes,
                                         "steps_per_epoch": plan.steps_per_epoch,
                                         "total_steps": plan.total_steps})
  progress.log_start(config, plan)
  ckpt = checkpointing.Checkpointer(workdir, keep=int(config.keep_checkpoints))
  writer = summaries.create_writer(workdir)
  finish_saves = True
  try:
    state = startup.initial_state(config, plan, ckpt, mesh)
    if plan.start_step == 0:
      writer.write_hparams(summaries.flat_hparams(config))
    # One extractor for the run's evaluations and its report: compiled once, images read once.
    extract = evaluators.make_run_extractor(config, plan.model) if plan.suite else None
    status = loop.train_loop(config, plan, state, ckpt, writer, mesh, batch_source, extract)
    if status or plan.suite is None:
      return status
    state = None
    reporting.final_report(config, plan, ckpt, writer, extract)
    return 0
  except jax.errors.JaxRuntimeError:
    # Several processes: another one may be gone, and a save in flight would wait for it.
    finish_saves = jax.process_count() == 1
    raise
  finally:
    if finish_saves:
      ckpt.close()    # saves in flight are finished, also when an error ends the run
    writer.flush()
