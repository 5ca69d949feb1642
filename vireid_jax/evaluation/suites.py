"""Each dataset's test side as one object: its test set, protocols, headline metric, rank lists.

Everything that differs between SYSU-MM01 and RegDB at test time lives here,
so the training loop, the evaluators and the user tools never branch on the
dataset's name:

  * `load(data_cfg, workdir)`: the test split (its lists are read and checked);
  * `evaluate(test_set, extract, eval_cfg, trials)`: {protocol: metrics};
  * `headline`: the (protocol, metric) that picks the best checkpoint;
  * `images_by_modality(test_set)`: every test image per modality;
  * `rank_list_sets(test_set, eval_cfg)`: the infrared queries and visible
    gallery a rank-list picture shows, and whether the camera rule applies.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import ml_collections
import numpy as np

from vireid_jax.data import datasets
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.evaluation import protocols

Extractor = Callable[[Sequence[str], int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ModalityImages:
  """Test images of one modality: paths with their person ids and cameras."""
  paths: tuple[str, ...]
  pids: np.ndarray
  cameras: np.ndarray

  @classmethod
  def from_rows(cls, rows) -> ModalityImages:
    """From (path, person id, camera) rows."""
    return cls(tuple(r[0] for r in rows), np.array([r[1] for r in rows], np.int64),
               np.array([r[2] for r in rows], np.int64))


class SysuSuite:
  """SYSU-MM01: infrared queries, visible galleries drawn per trial (four protocols)."""
  layout = "sysu"
  headline = ("all_single", "rank1")
  camera_rule = True

  def describe(self, test_set) -> str:
    gallery = sum(len(files) for files in test_set.gallery_files.values())
    return (f"{len(test_set.test_ids)} test ids, {len(test_set.query)} infrared queries, "
            f"{gallery} visible gallery images")

  def evaluate(self, test_set, extract: Extractor, eval_cfg: ml_collections.ConfigDict,
               trials: int) -> dict:
    return protocols.evaluate_sysu_protocols(
        test_set, extract, trials=trials, gallery_rule=eval_cfg.gallery_rule,
        rand_perm_cam=eval_cfg.rand_perm_cam or None, rerank=bool(eval_cfg.rerank),
        max_rank=int(eval_cfg.max_rank))

  def images_by_modality(self, test_set) -> dict[int, ModalityImages]:
    """The infrared queries and every visible gallery file (all cameras), dataset order."""
    visible = [(p, pid, cam) for (pid, cam), files in sorted(test_set.gallery_files.items())
               for p in files]
    infrared = [(r.path, r.label, r.camera) for r in test_set.query]
    return {VISIBLE: ModalityImages.from_rows(visible),
            INFRARED: ModalityImages.from_rows(infrared)}

  def rank_list_sets(self, test_set, eval_cfg, *, mode: str = "all", shot: str = "single",
                     trial: int = 0) -> tuple[ModalityImages, ModalityImages]:
    """Every infrared query, and the visible gallery the evaluation draws for (mode, shot, trial)."""
    queries = self.images_by_modality(test_set)[INFRARED]
    if eval_cfg.gallery_rule == "official":
      perm = protocols.load_rand_perm_cam(eval_cfg.rand_perm_cam)
      entries = protocols.draw_gallery_official(test_set.gallery_files, test_set.test_ids,
                                                mode, shot, trial, perm)
    else:
      entries = protocols.draw_gallery_baseline(test_set.gallery_files, test_set.test_ids,
                                                mode, shot, trial)
    return queries, ModalityImages.from_rows(entries)


class RegdbSuite:
  """RegDB: one trial split, visible-to-thermal and thermal-to-visible."""
  layout = "regdb"
  headline = ("visible_to_thermal", "rank1")
  camera_rule = False

  def describe(self, test_set) -> str:
    ids = len({r.label for r in test_set.visible})
    return (f"{ids} test ids, {len(test_set.visible)} visible + {len(test_set.thermal)} "
            "thermal images")

  def evaluate(self, test_set, extract: Extractor, eval_cfg: ml_collections.ConfigDict,
               trials: int) -> dict:
    del trials   # one split per run; the ten splits are averaged across runs
    return protocols.evaluate_regdb_protocols(
        test_set, extract, rerank=bool(eval_cfg.rerank), max_rank=int(eval_cfg.max_rank))

  def images_by_modality(self, test_set) -> dict[int, ModalityImages]:
    """The visible and thermal images of the trial split."""
    return {VISIBLE: ModalityImages.from_rows(
                [(r.path, r.label, r.camera) for r in test_set.visible]),
            INFRARED: ModalityImages.from_rows(
                [(r.path, r.label, r.camera) for r in test_set.thermal])}

  def rank_list_sets(self, test_set, eval_cfg, **unused) -> tuple[ModalityImages,
                                                                  ModalityImages]:
    """Thermal queries against the visible images (the thermal-to-visible direction)."""
    del eval_cfg, unused
    sets = self.images_by_modality(test_set)
    return sets[INFRARED], sets[VISIBLE]


Suite = SysuSuite | RegdbSuite
SUITES = {s.layout: s for s in (SysuSuite(), RegdbSuite())}


def suite_for(layout: str):
  if layout not in SUITES:
    raise ValueError(f"No test protocols for the dataset layout {layout!r}: "
                     f"expected one of {sorted(SUITES)}.")
  return SUITES[layout]


def load(data_cfg: ml_collections.ConfigDict, workdir) -> tuple[SysuSuite | RegdbSuite, object]:
  """(suite, test set) of the dataset that `data_cfg` names."""
  layout, test_set = datasets.load_test_set(data_cfg, workdir)
  return suite_for(layout), test_set


def dataset_label(data_cfg: ml_collections.ConfigDict, suite) -> str:
  """How results files and tables name the data: sysu, regdb or synthetic_sysu, ..."""
  return data_cfg.name if data_cfg.name != "synthetic" else f"synthetic_{suite.layout}"


def headline_value(suite, results: dict) -> float:
  protocol, metric = suite.headline
  return float(results[protocol][metric])
