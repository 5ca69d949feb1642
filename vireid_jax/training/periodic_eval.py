"""Evaluations during training: each evaluator with its schedule, its record and its best checkpoint."""

from __future__ import annotations

import dataclasses
import time

import jax
from absl import logging

from vireid_jax.evaluation import evaluators
from vireid_jax.training import parallel, periodic, setup
from vireid_jax.training.run_record import RunRecord
from vireid_jax.training.startup import RunPlan


@dataclasses.dataclass
class PeriodicEvaluation:
  """One evaluator run every `every` steps (and at the last step) during training.

  Its headline number goes into the run's record; when it beats every earlier
  one, the state is saved as the best checkpoint.
  """
  evaluator: evaluators.RetrievalEvaluator
  every: int                     # steps
  total: int                     # the run's last step
  steps_per_epoch: int
  record: RunRecord

  def due(self, step: int) -> bool:
    return step not in self.record.evaluations and periodic.itstime(step, self.every, self.total)

  def run(self, step: int, state, writer, ckpt, rank_list_queries: int = 0) -> None:
    started = time.perf_counter()
    result = self.evaluator.run(evaluation_variables(state),
                                rank_list_queries=rank_list_queries)
    seconds = time.perf_counter() - started
    writer.write_scalars(step, {**self.evaluator.scalars(result), "time/eval_s": seconds})
    if result.rank_list is not None:
      writer.write_images(step, {f"{self.evaluator.prefix}/rank_list": result.rank_list[None]})
    headline = parallel.from_process_zero(result.headline)   # every host decides alike
    best = self.record.add(step, headline)
    if best:
      ckpt.save_best(step, state, headline)
    logging.info("eval   step %d (epoch %g): %s%s (%.1f s)", step, step / self.steps_per_epoch,
                 self.evaluator.one_line(result), "  <- best" if best else "", seconds)


def periodic_evaluations(config, plan: RunPlan, extract=None) -> list[PeriodicEvaluation]:
  """The evaluations of `config.eval` during training (none without a test set or schedule)."""
  if plan.suite is None or int(config.eval.every_epochs) <= 0:
    return []
  evaluator = evaluators.RetrievalEvaluator(config, plan.model, plan.suite, plan.test_set,
                                            trials=int(config.eval.train_trials), prefix="eval",
                                            extract=extract)
  return [PeriodicEvaluation(evaluator, int(config.eval.every_epochs) * plan.steps_per_epoch,
                             plan.total_steps, plan.steps_per_epoch, plan.record)]


def evaluation_variables(state) -> dict:
  """The weights to evaluate: left on the devices by one process, host copies with several."""
  if jax.process_count() == 1:
    return {"params": state.params, "batch_stats": state.batch_stats}
  return setup.local_variables(state)
