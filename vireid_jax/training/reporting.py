"""The run's report: the best checkpoint evaluated with every trial into `results.json`.

Also the evaluation of a finished run (`--config.mode=eval`): the run's own
config, changed only by the given overrides. Settings that differ from the
run's report name their own results file and summary tag prefix
(`results_rerank.json`, `test_rerank/...`), so `results.json` is never
replaced by them.
"""

from __future__ import annotations

import json
import time

import jax
import ml_collections
from absl import logging
from etils import epath

from vireid_jax import config_defaults, fileio
from vireid_jax.data import datasets
from vireid_jax.errors import ConfigError
from vireid_jax.evaluation import evaluators, report, suites
from vireid_jax.training import parallel, run_info, setup, summaries
from vireid_jax.training.periodic_eval import evaluation_variables
from vireid_jax.training.startup import RunPlan


def report_plan(config, plan: RunPlan) -> tuple[str, int, dict, list[str]]:
  """(which checkpoint, its step, settings, tags) of the run's report."""
  which, step = "best", plan.record.best_step
  if step is None:                 # no evaluation during training: the latest checkpoint
    which, step = "latest", plan.total_steps
  settings = report.evaluation_settings(config, plan.suite, which, step)
  tags = report.variant_tags(dict(settings, checkpoint="best"), settings)   # the run's report
  return which, step, settings, tags


def completed_report(config, plan: RunPlan) -> dict | None:
  """The results of a run that already finished with its report (printed again), or None."""
  if plan.suite is None or plan.start_step < plan.total_steps:
    return None
  which, step, settings, tags = report_plan(config, plan)
  path = plan.workdir / report.results_filename(tags)
  done = read_results(path)
  if not parallel.agree_across_hosts(bool(done) and done.get("settings") == settings,
                                     f"whether {path} holds the run's report"):
    return None
  logging.info("This run is complete: its report (%s checkpoint, step %d) is %s.", which, step, path)
  print("\n" + report.format_table(done, done.get("dataset", "")), flush=True)
  return done


def final_report(config, plan: RunPlan, ckpt, writer, extract=None) -> dict:
  """Evaluates the best checkpoint with every trial into `results.json`."""
  ckpt.wait()
  which, step, settings, tags = report_plan(config, plan)
  if which == "latest":
    logging.warning("No %s evaluation during training (evals, eval.every_epochs, "
                    "val.every_epochs): reporting on the latest checkpoint.",
                    config.eval.select_best_on)
  else:
    logging.info("report: the best checkpoint on the %s evaluations", config.eval.select_best_on)
  state, _ = ckpt.restore(plan.abstract_state, step)
  return write_report(config, plan.model, plan.suite, plan.test_set, state, settings, tags,
                      plan.workdir, writer, extract)


def write_report(config, model, suite, test_set, state, settings: dict, tags: list[str],
                 workdir: epath.Path, writer, extract=None) -> dict:
  """Runs the evaluation of `settings`; prints the table; writes the results file and summaries."""
  evaluator = evaluators.RetrievalEvaluator(config, model, suite, test_set,
                                            trials=int(config.eval.trials),
                                            prefix=report.summary_prefix(tags), extract=extract)
  logging.info("report: %s checkpoint (step %d), %d gallery trial(s)%s", settings["checkpoint"],
               settings["step"], settings["trials"], f", {' '.join(tags)}" if tags else "")
  started = time.perf_counter()
  result = evaluator.run(evaluation_variables(state),
                         rank_list_queries=int(config.eval.rank_list_images))
  logging.info("report: evaluated in %.1f s", time.perf_counter() - started)
  step = settings["step"]
  writer.write_scalars(step, evaluator.scalars(result))
  if result.rank_list is not None:
    writer.write_images(step, {f"{evaluator.prefix}/rank_list": result.rank_list[None]})
  writer.flush()
  dataset = suites.dataset_label(config.data, suite)
  print("\n" + report.format_table(result.results, dataset), flush=True)
  if jax.process_index() == 0:
    path = workdir / report.results_filename(tags)
    report.write_results_json(path, dataset, result.results, settings)
    logging.info("results: %s", path)
  return result.results


def read_results(path: epath.Path) -> dict | None:
  try:
    text = fileio.read_text(path)
    return json.loads(text) if text is not None else None
  except (OSError, ValueError):
    return None


def evaluate_run(config: ml_collections.ConfigDict, workdir: fileio.PathLike,
                 override_keys: list[str]) -> int:
  """Evaluates a trained run with its own config, changed only by the given overrides.

  Settings that differ from the run's own report (checkpoint, re-ranking,
  flip averaging, gallery rule, trials, image size, precision, split)
  name the results file (`results_rerank.json`, ...) and the summary tag
  prefix (`test_rerank/...`): `results.json` is never replaced by them.
  """
  workdir = fileio.as_path(workdir)    # the one conversion: epath.Path from here on
  trained = run_info.read_config(workdir)
  eval_config = trained.copy_and_resolve_references()
  changed = config_defaults.apply_overrides(
      eval_config, config, [k for k in override_keys if k != "mode"])
  eval_config.mode = "eval"
  datasets.validate(eval_config)
  if eval_config.data.name == "fake":
    raise ConfigError("data.name='fake': random batches have no test set to evaluate on; "
                      f"evaluate a run trained on {', '.join(datasets.names()[:-1])} data.")
  logging.info("evaluating %s with its config.json%s", workdir,
               f" and {', '.join(changed)}" if changed else "")
  info = run_info.read_last_record(workdir)
  num_classes, steps_per_epoch = info.get("num_classes"), info.get("steps_per_epoch")
  if not num_classes or not steps_per_epoch:     # a workdir of an older version
    train_set = datasets.load_train_set(eval_config.data, workdir)
    num_classes, steps_per_epoch = train_set.num_classes, setup.steps_per_epoch(eval_config,
                                                                                 train_set)
  suite, test_set = suites.load(eval_config.data, workdir)
  mesh = parallel.make_mesh()
  model = setup.build_model(eval_config, int(num_classes))
  state, step, which = setup.restore_for_evaluation(
      eval_config, workdir, model, int(steps_per_epoch), eval_config.eval.checkpoint, mesh)
  settings = report.evaluation_settings(eval_config, suite, which, step)
  reference = report.evaluation_settings(trained, suite, "best", step)
  # Named by the checkpoint asked for: "best" of a run that never evaluated is its latest,
  # the checkpoint its own report used.
  requested = dict(settings, checkpoint=str(eval_config.eval.checkpoint))
  tags = report.variant_tags(requested, reference)
  writer = summaries.create_writer(workdir)
  try:
    write_report(eval_config, model, suite, test_set, state, settings, tags, workdir, writer)
  finally:
    writer.flush()
  return 0
