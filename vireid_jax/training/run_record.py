"""The evaluation history of a run, saved with every checkpoint.

A resumed run reads it back from its latest checkpoint, so it knows which
evaluations are done and which checkpoint is the best so far exactly as the
uninterrupted run would.
"""

from __future__ import annotations

import dataclasses

# The evaluation a record written before evaluations had names holds.
FIRST_EVALUATION = "test"


@dataclasses.dataclass
class RunRecord:
  """The evaluation history of a run, saved with every checkpoint.

  Attributes:
    history: evaluation name ("test", "val") -> step -> its headline metric
      (Rank-1 %) at that step.
    best_step: the step of the best evaluation of the one that selects the
      best checkpoint (`eval.select_best_on`); None before the first.
    best_value: its headline metric.
  """
  history: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)
  best_step: int | None = None
  best_value: float = -1.0

  def done(self, name: str, step: int) -> bool:
    """True when the evaluation `name` already ran at `step`."""
    return int(step) in self.history.get(name, {})

  def add(self, name: str, step: int, value: float, selects_best: bool) -> bool:
    """Records an evaluation; True when it selects the best checkpoint and beats every
    earlier one."""
    self.history.setdefault(name, {})[int(step)] = float(value)
    if selects_best and value > self.best_value:
      self.best_step, self.best_value = int(step), float(value)
      return True
    return False

  def to_json(self) -> dict:
    return {"history": {name: {str(k): v for k, v in sorted(steps.items())}
                        for name, steps in sorted(self.history.items())},
            "best_step": self.best_step, "best_value": self.best_value}

  @classmethod
  def from_json(cls, data: dict) -> RunRecord:
    """Reads `to_json`'s output, and the records of runs saved before evaluations had names
    ({"evaluations": {step: value}}, the test set's)."""
    data = data or {}
    history = data.get("history")
    if history is None:
      history = {FIRST_EVALUATION: data.get("evaluations", {})}
    return cls({name: {int(k): float(v) for k, v in steps.items()}
                for name, steps in history.items() if steps},
               data.get("best_step"), float(data.get("best_value", -1.0)))
