"""Evaluations during training, chosen by `config.evals`: each its schedule, tag prefix, history.

`test` runs the dataset's test protocols; `val` the held-out training
identities (`data.validation`). `eval.select_best_on` names the one whose
headline picks the best checkpoint (the report evaluates that checkpoint).
"""

from __future__ import annotations

import dataclasses
import time

import jax
from absl import logging

from vireid_jax import config_defaults
from vireid_jax.data import validation
from vireid_jax.evaluation import evaluators
from vireid_jax.training import parallel, periodic, setup
from vireid_jax.training.run_record import RunRecord
from vireid_jax.training.startup import RunPlan


@dataclasses.dataclass
class PeriodicEvaluation:
  """One evaluator run every `every` steps (and at the last step) during training.

  Its headline number goes into the run's record under `name`; when this
  evaluation selects the best checkpoint (`eval.select_best_on`) and the
  number beats every earlier one, the state is saved as the best checkpoint.
  """
  name: str
  evaluator: evaluators.RetrievalEvaluator
  every: int                     # steps
  total: int                     # the run's last step
  steps_per_epoch: int
  record: RunRecord
  selects_best: bool

  def due(self, step: int) -> bool:
    return not self.record.done(self.name, step) and periodic.itstime(step, self.every,
                                                                      self.total)

  def run(self, step: int, state, writer, ckpt, rank_list_queries: int = 0) -> None:
    started = time.perf_counter()
    result = self.evaluator.run(evaluation_variables(state),
                                rank_list_queries=rank_list_queries)
    seconds = time.perf_counter() - started
    prefix = self.evaluator.prefix
    writer.write_scalars(step, {**self.evaluator.scalars(result), f"time/{prefix}_s": seconds})
    if result.rank_list is not None:
      writer.write_images(step, {f"{prefix}/rank_list": result.rank_list[None]})
    headline = parallel.from_process_zero(result.headline)   # every host decides alike
    best = self.record.add(self.name, step, headline, self.selects_best)
    if best:
      ckpt.save_best(step, state, headline)
    logging.info("%-6s step %d (epoch %g): %s%s (%.1f s)", prefix, step,
                 step / self.steps_per_epoch, self.evaluator.one_line(result),
                 "  <- best" if best else "", seconds)


def _test_evaluator(config, plan: RunPlan, extract):
  """The dataset's test protocols (trial 0 by default), as summaries' `eval/...`."""
  if plan.suite is None:
    return None, 0
  evaluator = evaluators.RetrievalEvaluator(config, plan.model, plan.suite, plan.test_set,
                                            trials=int(config.eval.train_trials), prefix="eval",
                                            extract=extract)
  return evaluator, int(config.eval.every_epochs)


def _val_evaluator(config, plan: RunPlan, extract):
  """Held-out training identities (`data.validation`), as summaries' `val/...`."""
  del extract     # the test images' extractor; these come from the training set's source
  if plan.val_set is None:
    return None, 0
  evaluator = evaluators.RetrievalEvaluator(config, plan.model, validation.SUITE, plan.val_set,
                                            trials=1, prefix="val",
                                            image_source=plan.train_set.images)
  return evaluator, int(config.val.every_epochs)


# name in `evals` -> (config, plan, the run's test extractor) -> (evaluator or None, every
# how many epochs). A new evaluation is one function and one line here (and its name in
# `config_defaults.EVALUATIONS`).
EVALUATIONS = {
    "test": _test_evaluator,
    "val": _val_evaluator,
}


def periodic_evaluations(config, plan: RunPlan, extract=None) -> list[PeriodicEvaluation]:
  """The evaluations `config.evals` names, with their schedules (none without data)."""
  out = []
  for name in config_defaults.evaluation_names(config):
    evaluator, every_epochs = EVALUATIONS[name](config, plan, extract)
    if evaluator is None or every_epochs <= 0:
      continue
    out.append(PeriodicEvaluation(name, evaluator, every_epochs * plan.steps_per_epoch,
                                  plan.total_steps, plan.steps_per_epoch, plan.record,
                                  selects_best=name == config.eval.select_best_on))
  return out


def evaluation_variables(state) -> dict:
  """The weights to evaluate: left on the devices by one process, host copies with several."""
  if jax.process_count() == 1:
    return {"params": state.params, "batch_stats": state.batch_stats}
  return setup.local_variables(state)
