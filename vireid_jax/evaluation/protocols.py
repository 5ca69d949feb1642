"""Runs a dataset's test protocol (its `Suite`): draws, features once, metrics per trial.

The suite, declared in the dataset's module (`vireid_jax.data.<name>`), says
which rows there are, how each trial's query and gallery sets are drawn, which
gallery images a query ignores and how the CMC counts. This module does the
same for every dataset:

  * draws every (row, trial) set first, then embeds each modality once: every
    distinct image of it that any draw uses, in the order first drawn;
  * computes the similarities of each (query modality, gallery modality) pair
    once, over every image either side uses, and takes each trial's rows and
    columns from them (k-reciprocal re-ranking instead works on each trial's sets);
  * scores each trial (`metrics.evaluate`) and reports the mean and the
    (population, ddof=0) standard deviation over trials, in percent.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from vireid_jax.data.protocol import ModalityImages, Suite
from vireid_jax.data.records import MODALITY_NAMES
from vireid_jax.evaluation import metrics
from vireid_jax.evaluation import rerank as rerank_lib
from vireid_jax.evaluation.metrics import METRIC_KEYS

Extractor = Callable[[Sequence[str], int], np.ndarray]


def _extract(extract: Extractor, paths: Sequence[str], modality: int) -> np.ndarray:
  feats = np.asarray(extract(list(paths), modality), np.float32)
  if feats.ndim != 2 or feats.shape[0] != len(paths):
    raise ValueError(f"extract returned shape {feats.shape} for {len(paths)} images; "
                     "expected (num_images, feature_dim).")
  return feats


def _percent(result: dict) -> dict:
  cmc = result["cmc"]
  return {"rank1": 100.0 * float(cmc[0]), "rank10": 100.0 * float(cmc[9]),
          "rank20": 100.0 * float(cmc[19]), "mAP": 100.0 * result["mAP"],
          "mINP": 100.0 * result["mINP"]}


def summarize(per_trial: Sequence[dict]) -> dict:
  """Mean and std (ddof=0) over trials of the percentage metrics."""
  out = {k: float(np.mean([t[k] for t in per_trial])) for k in METRIC_KEYS}
  out["std"] = {k: float(np.std([t[k] for t in per_trial])) for k in METRIC_KEYS}
  out["trials"] = len(per_trial)
  out["per_trial"] = list(per_trial)
  return out


def _check_max_rank(max_rank: int) -> None:
  if int(max_rank) < 20:
    raise ValueError(f"max_rank={max_rank}: the report needs Rank-20, use max_rank >= 20.")


class _Index:
  """The distinct paths of one side of a modality pair, in first-seen order."""

  def __init__(self):
    self.column: dict[str, int] = {}

  def add(self, paths: Sequence[str]) -> np.ndarray:
    return np.array([self.column.setdefault(p, len(self.column)) for p in paths], np.int64)


def evaluate(suite: Suite, test_set, extract: Extractor, *, trials: int = 10,
             gallery_rule: str = "baseline", rand_perm_cam=None, rerank: bool = False,
             max_rank: int = 20, rows: Sequence[str] | None = None) -> dict:
  """The suite's results per row: {row name: {"rank1": ..., "std": {...}, "trials": n, ...}}.

  Args:
    suite: the dataset's protocol (`registry.get(name).suite`).
    test_set: its test set, as the dataset's reader returns it.
    extract: (paths, modality) -> (N, D) float32 L2-normalised features.
    trials: draws 0..trials-1 of every row drawn per trial; fixed rows have one.
    gallery_rule, rand_perm_cam: how galleries are drawn (`eval.gallery_rule`,
      `eval.rand_perm_cam`, a path or an already loaded file), where the suite
      offers a choice.
    rerank: k-reciprocal re-ranking of each trial's distances.
    rows: the rows to evaluate (default: all, in the suite's order).
  """
  _check_max_rank(max_rank)
  if int(trials) < 1:
    raise ValueError(f"trials={trials}: need at least one trial.")
  chosen = [suite.row(name) for name in rows] if rows is not None else list(suite.rows)
  options = suite.draw_options(gallery_rule, rand_perm_cam)
  # Every draw first: (row, trial) -> (queries, gallery).
  draws = {}
  for row in chosen:
    for trial in range(int(trials) if row.per_trial else 1):
      queries, gallery = row.draw(test_set, trial, options)
      if not queries.paths:
        raise ValueError(f"The {suite.name} test set has no queries for {row.name} (trial "
                         f"{trial}): no {MODALITY_NAMES[row.query]} test images found.")
      if not gallery.paths:
        raise ValueError(f"Every {suite.name} gallery draw of {row.name} is empty (trial "
                         f"{trial}): no gallery images found.")
      draws[(row.name, trial)] = (queries, gallery)
  # Paths of each modality, and of each side of each modality pair, in first-seen order.
  modality_index: dict[int, _Index] = {}
  pair_index: dict[tuple[int, int], tuple[_Index, _Index]] = {}
  positions = {}
  for row in chosen:
    for trial in range(int(trials) if row.per_trial else 1):
      queries, gallery = draws[(row.name, trial)]
      for modality, images in ((row.query, queries), (row.gallery, gallery)):
        modality_index.setdefault(modality, _Index()).add(images.paths)
      q_side, g_side = pair_index.setdefault((row.query, row.gallery), (_Index(), _Index()))
      positions[(row.name, trial)] = (q_side.add(queries.paths), g_side.add(gallery.paths))
  features = {m: _extract(extract, list(index.column), m) for m, index in modality_index.items()}

  def rows_of(modality: int, index: _Index) -> np.ndarray:
    where = modality_index[modality].column
    return features[modality][np.array([where[p] for p in index.column], np.int64)]

  pair_feats = {pair: (rows_of(pair[0], q_side), rows_of(pair[1], g_side))
                for pair, (q_side, g_side) in pair_index.items()}
  # Every similarity of a pair once (the same products whatever the trial).
  similarity = {} if rerank else {pair: q @ g.T for pair, (q, g) in pair_feats.items()}

  results = {}
  for row in chosen:
    pair = (row.query, row.gallery)
    per_trial = []
    for trial in range(int(trials) if row.per_trial else 1):
      queries, gallery = draws[(row.name, trial)]
      q_pos, g_pos = positions[(row.name, trial)]
      if rerank:
        q_feat, g_feat = pair_feats[pair]
        dist = np.asarray(rerank_lib.rerank_distances(q_feat[q_pos], g_feat[g_pos]))
      else:
        dist = _take(similarity[pair], q_pos, g_pos)
        np.negative(dist, out=dist)
      res = metrics.evaluate(dist, queries.pids, gallery.pids, queries.cameras, gallery.cameras,
                             rule=row.rule, distinct_ids=row.distinct_ids, max_rank=max_rank)
      per_trial.append(_percent(res))
    results[row.name] = summarize(per_trial)
  return results


def _take(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
  """matrix[rows][:, cols] as a new array (whole rows or columns are not copied twice)."""
  if rows.size != matrix.shape[0] or not np.array_equal(rows, np.arange(matrix.shape[0])):
    matrix = matrix.take(rows, axis=0)
  if cols.size == matrix.shape[1] and np.array_equal(cols, np.arange(matrix.shape[1])):
    return matrix.copy()
  return matrix.take(cols, axis=1)


def images_of(suite: Suite, test_set, row: str, trial: int = 0, gallery_rule: str = "baseline",
              rand_perm_cam=None) -> tuple[ModalityImages, ModalityImages]:
  """The (queries, gallery) of one row's trial, as the evaluation draws them."""
  return suite.row(row).draw(test_set, trial, suite.draw_options(gallery_rule, rand_perm_cam))
