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

Side effects live here; the math lives in the model, the losses and
`train_step`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import textwrap
import time

import jax
import ml_collections
import numpy as np
from etils import epath

from vireid_jax import config_defaults, console, fileio
from vireid_jax.data import datasets
from vireid_jax.errors import ConfigError, UserError
from vireid_jax.evaluation import evaluators, report, suites
from vireid_jax.training import checkpointing, parallel, periodic, run_info, setup, summaries
from vireid_jax.training import train_step as train_step_lib

log = logging.getLogger(__name__)

# Exit status of a run stopped by SIGTERM after saving: run the same command again.
# 128 + SIGTERM, what a shell reports for a process the signal ended.
STOPPED_EXIT_STATUS = 143
PROFILE_FIRST_STEP = 10       # profile_steps > 0: trace from this step of the start on


class NonFiniteLossError(UserError, FloatingPointError):
  """A step produced NaN/Inf; its update was dropped and nothing was saved from it."""


@dataclasses.dataclass
class RunRecord:
  """The evaluation history of a run, saved with every checkpoint.

  Attributes:
    evaluations: step -> headline metric (Rank-1 %) of each periodic evaluation.
    best_step: the step of the best evaluation (None before the first).
    best_value: its headline metric.
  """
  evaluations: dict[int, float] = dataclasses.field(default_factory=dict)
  best_step: int | None = None
  best_value: float = -1.0

  def add(self, step: int, value: float) -> bool:
    """Records an evaluation; True when it is strictly better than every earlier one."""
    self.evaluations[int(step)] = float(value)
    if value > self.best_value:
      self.best_step, self.best_value = int(step), float(value)
      return True
    return False

  def to_json(self) -> dict:
    return {"evaluations": {str(k): v for k, v in sorted(self.evaluations.items())},
            "best_step": self.best_step, "best_value": self.best_value}

  @classmethod
  def from_json(cls, data: dict) -> RunRecord:
    data = data or {}
    return cls({int(k): float(v) for k, v in data.get("evaluations", {}).items()},
               data.get("best_step"), float(data.get("best_value", -1.0)))


@dataclasses.dataclass
class RunPlan:
  """What a start checked and decided before writing anything."""
  workdir: epath.Path           # a local folder (absolute) or a URL (gs://...)
  train_set: object
  num_classes: int
  steps_per_epoch: int
  total_steps: int
  suite: object
  test_set: object
  model: object
  abstract_state: object
  start_step: int
  record: RunRecord


def plan_run(config: ml_collections.ConfigDict, workdir: fileio.PathLike, mesh) -> RunPlan:
  """Steps 1-2 of the module docstring: every check, nothing written (but a generated dataset)."""
  workdir = fileio.as_path(workdir)
  train_set, suite, test_set = None, None, None
  if config.data.name == "fake":
    num_classes = int(config.data.fake_num_classes)
  else:
    train_set = datasets.load_train_set(config.data, workdir)
    num_classes = train_set.num_classes
    suite, test_set = suites.load(config.data, workdir)
    datasets.check_test_images(config.data, suite.name, test_set)
    same_data = ("Every host must read the same dataset: give each one the same copy at "
                 "--config.data.root.")
    for value, what in ((num_classes, "the number of training identities"),
                        (len(train_set.visible), "the number of visible training images"),
                        (len(train_set.infrared), "the number of infrared training images")):
      parallel.agree_across_hosts(value, what, same_data)
  datasets.validate(config, num_classes=num_classes, num_devices=jax.device_count(),
                    num_hosts=jax.process_count())
  pretrained = str(config.model.pretrained)
  if pretrained not in ("", "none") and not os.path.isfile(os.path.expanduser(pretrained)):
    raise FileNotFoundError(
        f"model.pretrained={pretrained!r} does not exist. Give the torchvision ResNet "
        "checkpoint you downloaded (or its conversion: python -m vireid_jax.models.pretrained "
        "--in resnet50-0676ba61.pth --out resnet50.npz).")
  steps_per_epoch = setup.steps_per_epoch(config, train_set)
  model = setup.build_model(config, num_classes)
  abstract = setup.abstract_train_state(config, model, steps_per_epoch, mesh)
  start_step, record = 0, RunRecord()
  # Every host must take the same decisions (orbax's managers synchronise): agreed on, and
  # a barrier, so that no host writes before every host has looked.
  if parallel.agree_across_hosts((workdir / "checkpoints").is_dir(),
                                 "whether WORKDIR/checkpoints exists"):
    probe = checkpointing.Checkpointer(workdir, read_only=True)
    try:
      latest = probe.latest_step()
      if latest is not None:
        probe.check_compatible(abstract, "latest")
        start_step, record = latest, RunRecord.from_json(probe.record(latest))
    finally:
      probe.close()
  parallel.agree_across_hosts(start_step, "the step of the latest checkpoint")
  return RunPlan(workdir, train_set, num_classes, steps_per_epoch,
                 int(config.num_epochs) * steps_per_epoch, suite, test_set, model, abstract,
                 start_step, record)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: fileio.PathLike, *,
                       batch_source: setup.BatchSource | None = None) -> int:
  """Trains (resuming from `workdir` if it holds checkpoints), then reports on the best model.

  Args:
    config: the run's config (`config_defaults.base_config()` keys).
    workdir: where everything is written: a local folder or a URL (gs://BUCKET/...).
    batch_source: host-local batches by step; by default the dataset's
      tf.data pipeline (or random batches for data.name=fake).
  Returns:
    The exit status: 0 when done, STOPPED_EXIT_STATUS when stopped by SIGTERM.
  """
  mesh = parallel.make_mesh()
  plan = plan_run(config, workdir, mesh)
  workdir = plan.workdir
  done = completed_report(config, plan)
  if done is not None:
    return 0
  run_info.write(workdir, config, extra={"num_classes": plan.num_classes,
                                         "steps_per_epoch": plan.steps_per_epoch,
                                         "total_steps": plan.total_steps})
  log_start(config, plan)
  ckpt = checkpointing.Checkpointer(workdir, keep=int(config.keep_checkpoints))
  writer = summaries.create_writer(workdir)
  finish_saves = True
  try:
    state = initial_state(config, plan, ckpt, mesh)
    if plan.start_step == 0:
      writer.write_hparams(summaries.flat_hparams(config))
    # One extractor for the run's evaluations and its report: compiled once, images read once.
    extract = evaluators.make_run_extractor(config, plan.model) if plan.suite else None
    status = train_loop(config, plan, state, ckpt, writer, mesh, batch_source, extract)
    if status or plan.suite is None:
      return status
    state = None
    final_report(config, plan, ckpt, writer, extract)
    return 0
  except jax.errors.JaxRuntimeError:
    # Several processes: another one may be gone, and a save in flight would wait for it.
    finish_saves = jax.process_count() == 1
    raise
  finally:
    if finish_saves:
      ckpt.close()    # saves in flight are finished, also when an error ends the run
    writer.flush()


def initial_state(config, plan: RunPlan, ckpt, mesh):
  """The restored latest checkpoint, or a freshly initialised (ImageNet-loaded) state."""
  if plan.start_step:
    state, _ = ckpt.restore(plan.abstract_state, "latest")
    return state
  variables = setup.init_variables(config, plan.model, mesh, jax.random.key(config.seed))
  tx = setup.build_optimizer(config, variables["params"], plan.steps_per_epoch)
  return setup.initial_train_state(config, variables, tx, mesh)


def train_loop(config, plan: RunPlan, state, ckpt, writer, mesh,
               batch_source: setup.BatchSource | None, extract=None) -> int:
  """Steps from the start step to the end; returns 0, or STOPPED_EXIT_STATUS on SIGTERM."""
  total, spe, record = plan.total_steps, plan.steps_per_epoch, plan.record
  evaluator = None
  if plan.suite is not None and int(config.eval.every_epochs) > 0:
    evaluator = evaluators.RetrievalEvaluator(config, plan.model, plan.suite, plan.test_set,
                                              trials=int(config.eval.train_trials), prefix="eval",
                                              extract=extract)
  eval_every = int(config.eval.every_epochs) * spe
  save_every = int(config.checkpoint_every_epochs) * spe
  log_every = int(config.log_every_steps)

  def evaluate(step: int) -> None:
    started = time.perf_counter()
    result = evaluator.run(evaluation_variables(state),
                           rank_list_queries=int(config.eval.rank_list_images))
    seconds = time.perf_counter() - started
    writer.write_scalars(step, {**evaluator.scalars(result), "time/eval_s": seconds})
    if result.rank_list is not None:
      writer.write_images(step, {"eval/rank_list": result.rank_list[None]})
    headline = parallel.from_process_zero(result.headline)   # every host decides alike
    best = record.add(step, headline)
    if best:
      ckpt.save_best(step, state, headline)
    log.info("eval   step %d (epoch %g): %s%s (%.1f s)", step, step / spe,
             evaluator.one_line(result), "  <- best" if best else "", seconds)

  check_nonfinite(state, config, ckpt=None)
  if (evaluator and plan.start_step and plan.start_step not in record.evaluations
      and periodic.itstime(plan.start_step, eval_every, total)):
    evaluate(plan.start_step)       # due when the run stopped, but not done
  if plan.start_step >= total:
    return 0

  tx = setup.build_optimizer(config, plan.abstract_state.params, spe)
  step_fn = setup.make_jitted_step(plan.model, tx, config, mesh, spe)
  source = batch_source or (setup.fake_batches(config, plan.num_classes) if plan.train_set is None
                            else setup.dataset_batches(config, plan.train_set))
  batches = setup.global_batches(source, plan.start_step, mesh)
  progress = ProgressLine(config, plan)
  profiler = Profiler(workdir=plan.workdir, first=plan.start_step + PROFILE_FIRST_STEP,
                      steps=int(config.profile_steps))
  with periodic.StopRequest(plan.start_step) as stop:
    for step in range(plan.start_step, total):
      profiler.at(step)
      state, metrics = step_fn(state, next(batches))
      done = step + 1
      progress.add(metrics, done)
      stopping = stop.should_stop(done)
      log_now = periodic.itstime(done, log_every, total, stopping=stopping)
      eval_now = (evaluator is not None and not stopping and done not in record.evaluations
                  and periodic.itstime(done, eval_every, total))
      save_now = periodic.itstime(done, save_every, total, stopping=stopping)
      if log_now:
        progress.write(writer, done)
      if log_now or eval_now or save_now:
        check_nonfinite(state, config, ckpt)
      if eval_now:
        evaluate(done)
        progress.restart_clock(done)
        stopping = stop.should_stop(done)      # a signal that came during the evaluation
        save_now = save_now or stopping
      if save_now:
        jax.block_until_ready(state)    # the steps in flight first: they are training time
        started = time.perf_counter()
        ckpt.save(done, state, record.to_json())   # asynchronous: this is the pause it costs
        progress.pause(time.perf_counter() - started)
      if stopping:
        return stopped(ckpt, done)
    profiler.stop()
    if stop.should_stop(total):
      return stopped(ckpt, total)
  return 0


def evaluation_variables(state) -> dict:
  """The weights to evaluate: left on the devices by one process, host copies with several."""
  if jax.process_count() == 1:
    return {"params": state.params, "batch_stats": state.batch_stats}
  return setup.local_variables(state)


def stopped(ckpt, step: int) -> int:
  ckpt.wait()
  log.warning("Stopped at step %d with a checkpoint; run the same command to resume.", step)
  return STOPPED_EXIT_STATUS


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
  log.info("This run is complete: its report (%s checkpoint, step %d) is %s.", which, step, path)
  print("\n" + report.format_table(done, done.get("dataset", "")), flush=True)
  return done


def final_report(config, plan: RunPlan, ckpt, writer, extract=None) -> dict:
  """Evaluates the best checkpoint with every trial into `results.json`."""
  ckpt.wait()
  which, step, settings, tags = report_plan(config, plan)
  if which == "latest":
    log.warning("No evaluation during training (eval.every_epochs=0): reporting on the "
                "latest checkpoint.")
  state, _ = ckpt.restore(plan.abstract_state, step)
  return write_report(config, plan.model, plan.suite, plan.test_set, state, settings, tags,
                      plan.workdir, writer, extract)


def write_report(config, model, suite, test_set, state, settings: dict, tags: list[str],
                 workdir: epath.Path, writer, extract=None) -> dict:
  """Runs the evaluation of `settings`; prints the table; writes the results file and summaries."""
  evaluator = evaluators.RetrievalEvaluator(config, model, suite, test_set,
                                            trials=int(config.eval.trials),
                                            prefix=report.summary_prefix(tags), extract=extract)
  log.info("report: %s checkpoint (step %d), %d gallery trial(s)%s", settings["checkpoint"],
           settings["step"], settings["trials"], f", {' '.join(tags)}" if tags else "")
  started = time.perf_counter()
  result = evaluator.run(evaluation_variables(state),
                         rank_list_queries=int(config.eval.rank_list_images))
  log.info("report: evaluated in %.1f s", time.perf_counter() - started)
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
    log.info("results: %s", path)
  return result.results


def read_results(path: epath.Path) -> dict | None:
  try:
    text = fileio.read_text(path)
    return json.loads(text) if text is not None else None
  except (OSError, ValueError):
    return None


# ----------------------------------------------------------------------------
# Evaluating a finished run (--config.mode=eval).

def evaluate_run(config: ml_collections.ConfigDict, workdir: fileio.PathLike,
                 override_keys: list[str]) -> int:
  """Evaluates a trained run with its own config, changed only by the given overrides.

  Settings that differ from the run's own report (checkpoint, re-ranking,
  flip averaging, gallery rule, trials, image size, precision, split)
  name the results file (`results_rerank.json`, ...) and the summary tag
  prefix (`test_rerank/...`): `results.json` is never replaced by them.
  """
  workdir = fileio.as_path(workdir)
  trained = run_info.read_config(workdir)
  eval_config = trained.copy_and_resolve_references()
  changed = []
  for key in override_keys:
    if key == "mode":
      continue
    value = config_defaults.get_key(config, key)
    *parents, leaf = key.split(".")
    node = eval_config
    for p in parents:
      node = node[p]
    if node[leaf] != value:
      node[leaf] = value
      changed.append(f"{key}={value!r}")
  eval_config.mode = "eval"
  datasets.validate(eval_config)
  if eval_config.data.name == "fake":
    raise ConfigError("data.name='fake': random batches have no test set to evaluate on; "
                      f"evaluate a run trained on {', '.join(datasets.names()[:-1])} data.")
  log.info("evaluating %s with its config.json%s", workdir,
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


# ----------------------------------------------------------------------------
# Console and checks.

def log_start(config, plan: RunPlan) -> None:
  """A few lines: devices, workdir, config changes, data, model, schedule, summaries."""
  devices = jax.devices()
  log.info("vireid_jax on %d %s device(s) in %d process(es), JAX %s", len(devices),
           devices[0].platform, jax.process_count(), jax.__version__)
  state = (f"resuming at step {plan.start_step} of {plan.total_steps}" if plan.start_step
           else "new run")
  log.info("workdir   %s (%s)", plan.workdir, state)
  changes = run_info.changed_keys(config_defaults.base_config().to_dict(), config.to_dict())
  changes = [f"{k}={config_defaults.get_key(config, k)!r}" for k in changes]
  text = textwrap.fill(" ".join(changes), width=96, initial_indent="config    ",
                       subsequent_indent="          ") if changes else "config    the defaults"
  for line in text.splitlines():
    log.info("%s", line)
  if plan.train_set is not None:
    log.info("data      %s at %s: %d training ids, %d visible + %d infrared images; %s",
             suites.dataset_label(config.data, plan.suite),
             datasets.layout_and_root(config.data, plan.workdir)[1], plan.num_classes,
             len(plan.train_set.visible), len(plan.train_set.infrared),
             plan.suite.describe(plan.test_set))
  else:
    log.info("data      random batches (data.name=fake), %d classes", plan.num_classes)
  params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(plan.abstract_state.params))
  p, k = int(config.batch.identities), int(config.batch.instances)
  log.info("model     ResNet-%d, %.1fM parameters, %s compute; batch %d ids x %d images x 2 "
           "modalities = %d", int(config.model.depth), params / 1e6, config.model.dtype, p, k,
           2 * p * k)
  log.info("schedule  %d steps = %d epochs x %d; evaluation every %s, checkpoint every %d "
           "epoch(s)", plan.total_steps, int(config.num_epochs), plan.steps_per_epoch,
           f"{config.eval.every_epochs} epoch(s)" if int(config.eval.every_epochs) and plan.suite
           else "- (off)", int(config.checkpoint_every_epochs))
  log.info("summaries %s/metrics.jsonl; TensorBoard: tensorboard --logdir %s",
           plan.workdir, plan.workdir)


class ProgressLine:
  """One line per log step: step, epoch, losses, lr, speed and ETA; the same numbers to summaries.

  The first step (which compiles) is timed on its own and left out of the
  speed, as are evaluations (`restart_clock`) and checkpoint saves (`pause`).
  `train/host_cpu_cores` is the CPU time of this process (the input
  pipeline's threads included) over the wall time of the interval: how many
  cores the job keeps busy.
  """

  def __init__(self, config, plan: RunPlan):
    self.total = plan.total_steps
    self.steps_per_epoch = plan.steps_per_epoch
    self.images_per_step = 2 * int(config.batch.identities) * int(config.batch.instances)
    self.pending: list[dict] = []
    self.t_created = time.time()
    self.t_last, self.step_last, self.cpu_last, self.paused = None, None, None, 0.0

  def add(self, metrics: dict, step: int) -> None:
    self.pending.append(metrics)
    if self.t_last is None:
      jax.block_until_ready(metrics)
      log.info("train step compiled and run once in %.1f s (%.0f s after the command started)",
               time.time() - self.t_created, console.seconds_since_process_start())
      self.restart_clock(step)

  def restart_clock(self, step: int) -> None:
    self.t_last, self.step_last, self.paused = time.time(), step, 0.0
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
    paused = self.paused
    self.restart_clock(step)
    if steps > 0:
      mean["train/step_time_s"] = sec_per_step
      mean["train/images_per_s"] = self.images_per_step / max(sec_per_step, 1e-9)
      mean["train/host_cpu_cores"] = cpu / max(wall, 1e-9)
      if paused:
        mean["time/save_s"] = paused
    mean["train/epoch"] = step / self.steps_per_epoch
    writer.write_scalars(step, mean)
    terms = [f"{name} {mean[f'loss/{name}']:.3f}" for name in ("id", "tri")
             if f"loss/{name}" in mean]
    intra = [v for k, v in mean.items() if k.startswith("loss/intra_")]
    if intra:
      terms.append(f"intra {sum(intra):.3f}")
    if "loss/dist" in mean:
      terms.append(f"dist {mean['loss/dist']:.4f}")
    speed = (f" | {sec_per_step:.3f} s/step, {mean['train/images_per_s']:.0f} img/s, ETA "
             f"{format_duration((self.total - step) * sec_per_step)}" if steps > 0 else "")
    log.info("step %*d/%d | epoch %.2f | loss %.4f (%s) | lr %.3g%s",
             len(str(self.total)), step, self.total, step / self.steps_per_epoch,
             mean.get("loss/total", float("nan")), ", ".join(terms),
             mean.get("train/lr_new", float("nan")), speed)


def format_duration(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Profiler:
  """A trace of `steps` steps from step `first` into WORKDIR/profile (profile_steps > 0)."""

  def __init__(self, workdir: epath.Path, first: int, steps: int):
    self.dir, self.first, self.steps, self.active = str(workdir / "profile"), first, steps, False

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
      log.info("profile of %d steps written to %s", self.steps, self.dir)


def check_nonfinite(state, config, ckpt) -> None:
  """Stops the run on a NaN/Inf step unless `optim.skip_nonfinite`."""
  count = int(jax.device_get(state.nonfinite_count))
  if not count:
    return
  first = int(jax.device_get(state.first_nonfinite_step))
  terms = train_step_lib.describe_nonfinite(int(jax.device_get(state.first_nonfinite_terms)))
  # Steps are numbered as in the logs and checkpoints: step n is the update from n-1 to n.
  if config.optim.skip_nonfinite:
    log.warning("%d step(s) skipped for NaN/Inf so far (first at step %d: %s).",
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
