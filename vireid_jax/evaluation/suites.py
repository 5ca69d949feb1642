"""A dataset's test side for the training loop, the evaluators and the tools.

The protocol itself (rows, draws, rules) is declared in the dataset's module
(`Dataset.suite`); this module loads the test set the config names and runs
the suite with the config's evaluation settings, so nothing downstream
branches on the dataset:

  * `load(data_cfg, workdir)`: (suite, test set), its lists read and checked;
  * `evaluate(suite, test_set, extract, eval_cfg, trials)`: {row: metrics};
  * `headline_value(suite, results)`: the number that picks the best checkpoint;
  * `dataset_label(data_cfg, suite)`: how results name the data.
"""

from __future__ import annotations

from typing import Callable, Sequence

import ml_collections
import numpy as np

from vireid_jax.data import datasets, registry
from vireid_jax.data.protocol import Suite
from vireid_jax.evaluation import protocols

Extractor = Callable[[Sequence[str], int], np.ndarray]


def suite_for(layout: str) -> Suite:
  """The suite of the dataset called `layout`."""
  return registry.get(layout).suite


def load(data_cfg: ml_collections.ConfigDict, workdir) -> tuple[Suite, object]:
  """(suite, test set) of the dataset that `data_cfg` names."""
  layout, test_set = datasets.load_test_set(data_cfg, workdir)
  return suite_for(layout), test_set


def evaluate(suite: Suite, test_set, extract: Extractor, eval_cfg: ml_collections.ConfigDict,
             trials: int) -> dict:
  """Every row of the suite with the run's evaluation settings (`config.eval`)."""
  return protocols.evaluate(
      suite, test_set, extract, trials=trials, gallery_rule=eval_cfg.gallery_rule,
      rand_perm_cam=eval_cfg.rand_perm_cam or None, rerank=bool(eval_cfg.rerank),
      max_rank=int(eval_cfg.max_rank))


def dataset_label(data_cfg: ml_collections.ConfigDict, suite: Suite) -> str:
  """How results files and tables name the data: the dataset, or synthetic_<dataset>."""
  if data_cfg.name == registry.SYNTHETIC:
    return f"{registry.SYNTHETIC}_{suite.name}"
  return data_cfg.name


def headline_value(suite: Suite, results: dict) -> float:
  protocol, metric = suite.headline
  return float(results[protocol][metric])
