"""What a dataset declares about its test protocol: rows, who ignores whom, gallery draws.

A dataset's `Suite` lists its result rows. Each `Row` says which modality
queries which, how the two image sets are drawn for a trial, which gallery
images a query ignores (its `rule`) and whether the CMC counts distinct
identities. The evaluation (`vireid_jax.evaluation.protocols`) runs any suite
the same way, so the test side of a dataset lives in the dataset's own module.
Pure numpy and stdlib.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from vireid_jax.data.records import ImageRecord


@dataclasses.dataclass(frozen=True)
class ModalityImages:
  """Test images of one modality: paths with their person ids and cameras."""
  paths: tuple[str, ...]
  pids: np.ndarray
  cameras: np.ndarray

  @classmethod
  def from_rows(cls, rows) -> ModalityImages:
    """From (path, person id, camera) rows."""
    rows = list(rows)
    return cls(tuple(r[0] for r in rows), np.array([r[1] for r in rows], np.int64),
               np.array([r[2] for r in rows], np.int64))

  @classmethod
  def from_records(cls, records: Iterable[ImageRecord]) -> ModalityImages:
    """From records whose label is the person id."""
    return cls.from_rows((r.path, r.label, r.camera) for r in records)


# ---------------------------------------------------------------- which gallery images a query sees

Block = tuple[np.ndarray, np.ndarray]     # (query rows, the gallery columns they see)


@dataclasses.dataclass(frozen=True)
class SeesAll:
  """Every query sees the whole gallery."""

  def blocks(self, q_pids, q_cams, g_pids, g_cams) -> list[Block]:
    del q_cams, g_cams
    return [(np.arange(len(q_pids)), np.arange(len(g_pids)))]

  def mask(self, q_pids, q_cams, g_pids, g_cams) -> np.ndarray | None:
    del q_pids, q_cams, g_pids, g_cams
    return None


@dataclasses.dataclass(frozen=True)
class IgnoresCamera:
  """Queries from `query_camera` ignore every gallery image from `gallery_camera`, any identity."""
  query_camera: int
  gallery_camera: int

  def blocks(self, q_pids, q_cams, g_pids, g_cams) -> list[Block]:
    del q_pids, g_pids
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    from_it = q_cams == self.query_camera
    return [(np.flatnonzero(~from_it), np.arange(g_cams.size)),
            (np.flatnonzero(from_it), np.flatnonzero(g_cams != self.gallery_camera))]

  def mask(self, q_pids, q_cams, g_pids, g_cams) -> np.ndarray:
    """(Q, G) True where the rule hides the gallery image from the query."""
    del q_pids, g_pids
    return ((np.asarray(q_cams)[:, None] == self.query_camera)
            & (np.asarray(g_cams)[None, :] == self.gallery_camera))


@dataclasses.dataclass(frozen=True)
class IgnoresOwnCamera:
  """A query ignores the gallery images of its own identity taken by its own camera."""

  def blocks(self, q_pids, q_cams, g_pids, g_cams) -> list[Block]:
    q_keys = np.stack([np.asarray(q_pids), np.asarray(q_cams)], axis=1)
    g_keys = np.stack([np.asarray(g_pids), np.asarray(g_cams)], axis=1)
    everything = np.arange(len(g_keys))
    # Gallery columns per (identity, camera), and queries grouped the same way.
    hidden = {}
    for col, key in enumerate(map(tuple, g_keys.tolist())):
      hidden.setdefault(key, []).append(col)
    groups = {}
    for row, key in enumerate(map(tuple, q_keys.tolist())):
      groups.setdefault(key, []).append(row)
    sees_all, out = [], []
    for key, rows in groups.items():
      if key in hidden:
        out.append((np.array(rows, np.int64), np.delete(everything, hidden[key])))
      else:
        sees_all.extend(rows)
    if sees_all:
      out.append((np.array(sorted(sees_all), np.int64), everything))
    return out

  def mask(self, q_pids, q_cams, g_pids, g_cams) -> np.ndarray:
    """(Q, G) True where the rule hides the gallery image from the query."""
    return ((np.asarray(q_pids)[:, None] == np.asarray(g_pids)[None, :])
            & (np.asarray(q_cams)[:, None] == np.asarray(g_cams)[None, :]))


# ---------------------------------------------------------------- rows and suites

@dataclasses.dataclass(frozen=True)
class DrawOptions:
  """How galleries are drawn: `eval.gallery_rule` and what that rule reads (a loaded file)."""
  gallery_rule: str = "baseline"
  source: Any = None


# (test set, trial, options) -> (queries, gallery) of one trial.
Draw = Callable[[Any, int, DrawOptions], tuple[ModalityImages, ModalityImages]]


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the results: who queries whom, and how.

  Attributes:
    name: the row's name in tables, summaries and results files.
    query, gallery: the modalities (records.VISIBLE / INFRARED).
    draw: the two image sets of a trial.
    rule: which gallery images each query ignores (`SeesAll`, `IgnoresCamera`, ...).
    distinct_ids: the CMC counts distinct identities of the ranked list (a
      query is found at rank r when its identity is the r-th distinct one);
      False: the rank of the first positive.
    per_trial: drawn anew for every trial; False: one fixed draw (trials = 1).
  """
  name: str
  query: int
  gallery: int
  draw: Draw
  rule: Any = SeesAll()
  distinct_ids: bool = True
  per_trial: bool = True


@dataclasses.dataclass(frozen=True)
class Suite:
  """A dataset's test protocol.

  Attributes:
    name: the dataset's name (how results files and tables name the data).
    rows: the result rows, in table order.
    headline: (row, metric) that picks the best checkpoint during training.
    rank_list_row: an infrared-to-visible row, for rank-list pictures.
    describe: test set -> one line for the console.
    images_by_modality: test set -> {modality: every test image of it}.
    gallery_rules: the `eval.gallery_rule` values the draws know.
    load_draw_source: (eval.gallery_rule, eval.rand_perm_cam) -> what the draws
      read besides the test set (the official permutation file), loaded once.
    records_split: results record `data.trial` as their split (one model per split).
  """
  name: str
  rows: tuple[Row, ...]
  headline: tuple[str, str]
  rank_list_row: str
  describe: Callable[[Any], str]
  images_by_modality: Callable[[Any], dict[int, ModalityImages]]
  gallery_rules: tuple[str, ...] = ("baseline",)
  load_draw_source: Callable[[str, Any], Any] = lambda rule, source: None
  records_split: bool = False

  @property
  def drawn(self) -> bool:
    """True when some row is drawn per trial (then `eval.trials` applies)."""
    return any(r.per_trial for r in self.rows)

  def row(self, name: str) -> Row:
    for r in self.rows:
      if r.name == name:
        return r
    raise ValueError(f"{self.name} has no protocol {name!r}; it has "
                     f"{', '.join(r.name for r in self.rows)}.")

  def draw_options(self, gallery_rule: str = "baseline", source: Any = None) -> DrawOptions:
    """Checks the rule against this suite and loads what it reads."""
    if gallery_rule not in self.gallery_rules:
      raise ValueError(f"eval.gallery_rule={gallery_rule!r}: {self.name} galleries are drawn "
                       f"by {' or '.join(repr(r) for r in self.gallery_rules)}.")
    return DrawOptions(gallery_rule, self.load_draw_source(gallery_rule, source))


def fixed(queries: Callable[[Any], ModalityImages],
          gallery: Callable[[Any], ModalityImages]) -> Draw:
  """A draw that is the same every trial: the two sets `queries(test set)`, `gallery(test set)`."""
  def draw(test_set, trial, options):
    del trial, options
    return queries(test_set), gallery(test_set)
  return draw


def draw_from_folders(folders: Iterable[tuple[tuple[int, int], Sequence[str]]], trial: int,
                      per_folder: int = 1) -> list[tuple[str, int, int]]:
  """The baseline draw: `random.seed(trial)`, then per (person, camera) folder in the given
  order, `random.choice` of its sorted files (per_folder > 1: `random.sample` of up to that
  many). Empty folders draw nothing. Returns (path, person id, camera) rows.

  `random.Random(trial)` gives exactly the numbers of the module functions after
  `random.seed(trial)`, without touching the global stream.
  """
  rng = random.Random(trial)
  out = []
  for (pid, cam), files in folders:
    files = list(files)
    if not files:
      continue
    if per_folder == 1:
      out.append((rng.choice(files), pid, cam))
    else:
      out.extend((f, pid, cam) for f in rng.sample(files, min(per_folder, len(files))))
  return out
