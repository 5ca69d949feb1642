"""The evaluation history of a run, saved with every checkpoint.

A resumed run reads it back from its latest checkpoint, so it knows which
evaluations are done and which checkpoint is the best so far exactly as the
uninterrupted run would.
"""

from __future__ import annotations

import dataclasses


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
