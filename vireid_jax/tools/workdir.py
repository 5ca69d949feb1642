"""Opens a trained workdir for the user tools: its config, model, weights and test data.

A workdir holds everything needed: `config.json` (the run's full config),
`run_info.jsonl` (number of classes, steps per epoch) and the orbax
checkpoints. The tools therefore take only `--workdir`, never `--config`. No
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np
from etils import epath

from vireid_jax import fileio
from vireid_jax.data import datasets
from vireid_jax.evaluation import evaluators, suites
from vireid_jax.training import parallel, run_info, setup


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A restored run: what every tool needs to embed images."""
  workdir: epath.Path      # a local folder (absolute) or a URL (gs://...)
  config: ml_collections.ConfigDict
  model: Any
  variables: dict          # {"params", "batch_stats"} as host numpy arrays
  step: int
  checkpoint: str          # which checkpoint was restored ("best", "latest" or a step)

  def extractor(self, batch_size: int | None = None) -> Callable[[Sequence[str], int], np.ndarray]:
    """`extract(paths, modality) -> float32 (N, D)`, batched on the local devices."""
    extract = evaluators.make_test_extractor(self.config, self.model, batch_size=batch_size)
    return functools.partial(extract, weights=self.variables)

  def test_data(self):
    """(suite, test set) of the run's dataset."""
    return suites.load(self.config.data, self.workdir)


def load_run(workdir: fileio.PathLike, checkpoint: str = "best") -> TrainedRun:
  """Restores `workdir`'s `checkpoint` (best | latest | STEP; best falls back to latest)."""
  workdir = fileio.as_path(workdir)
  config = run_info.read_config(workdir)
  info = run_info.read_last_record(workdir)
  num_classes, steps_per_epoch = info.get("num_classes"), info.get("steps_per_epoch")
  if not num_classes or not steps_per_epoch:   # older runs: derive them from the data
    train_set = datasets.load_train_set(config.data, workdir)
    num_classes = train_set.num_classes
    steps_per_epoch = setup.steps_per_epoch(config, train_set)
  model = setup.build_model(config, int(num_classes))
  state, step, which = setup.restore_for_evaluation(
      config, workdir, model, int(steps_per_epoch), checkpoint, parallel.make_mesh())
  return TrainedRun(workdir=workdir, config=config, model=model,
                    variables=setup.local_variables(state), step=int(step), checkpoint=which)
