"""The LLCM test protocol, as DEEN's code (data_manager.py, eval_metrics.py, test.py) runs it.

Queries of a modality are all its test images. The gallery of a modality for
trial t is drawn as SYSU-MM01's baseline rule draws: `random.seed(t)`, then,
in query order (ids ascending, cameras in order), one `random.choice` of the
sorted files of every (person, camera) folder. A query ignores the gallery
images of its own identity from its own camera (each LLCM camera films in
both modalities); the CMC counts distinct identities; queries left without a
positive are skipped. Ten trials.

Three rows (docs/method.md, "LLCM"):
  * infrared_to_visible: every infrared image against the drawn visible gallery;
  * visible_to_infrared: every visible image against the drawn infrared gallery;
  * deen_visible_to_infrared: what DEEN's test.py reports as "VIS to IR"
    (test_mode [2, 1]): it draws the infrared gallery and transposes the
    distances, so the drawn infrared images query every visible image. The
    LLCM "VIS to IR" figures papers publish are this row.
"""

from __future__ import annotations

from vireid_jax.data.llcm.reader import LlcmTestSet
from vireid_jax.data.protocol import (IgnoresOwnCamera, ModalityImages, Row, Suite,
                                      draw_from_folders)
from vireid_jax.data.records import INFRARED, VISIBLE

RULE = IgnoresOwnCamera()


def every_image(test_set: LlcmTestSet, modality: int) -> ModalityImages:
  """Every test image of the modality, in query order."""
  return ModalityImages.from_records(test_set.records(modality))


def drawn(test_set: LlcmTestSet, modality: int, trial: int) -> ModalityImages:
  """One image of every (person, camera) folder of the modality, drawn for `trial`."""
  return ModalityImages.from_rows(draw_from_folders(test_set.folders(modality), trial))


def _all_against_drawn(query: int, gallery: int):
  def draw(test_set, trial, options):
    del options
    return every_image(test_set, query), drawn(test_set, gallery, trial)
  return draw


def _deen_transposed(test_set, trial, options):
  """DEEN's "VIS to IR": the drawn infrared images query every visible image."""
  del options
  return drawn(test_set, INFRARED, trial), every_image(test_set, VISIBLE)


def describe(test_set: LlcmTestSet) -> str:
  return (f"{len(test_set.test_ids)} test ids, {len(test_set.visible)} visible + "
          f"{len(test_set.infrared)} infrared images (galleries drawn per trial)")


SUITE = Suite(
    "llcm",
    rows=(Row("infrared_to_visible", INFRARED, VISIBLE, _all_against_drawn(INFRARED, VISIBLE),
              RULE),
          Row("visible_to_infrared", VISIBLE, INFRARED, _all_against_drawn(VISIBLE, INFRARED),
              RULE),
          Row("deen_visible_to_infrared", INFRARED, VISIBLE, _deen_transposed, RULE)),
    headline=("infrared_to_visible", "rank1"),   # DEEN's model selection (test_mode [1, 2])
    rank_list_row="infrared_to_visible",
    describe=describe,
    images_by_modality=lambda test_set: {m: every_image(test_set, m) for m in (VISIBLE, INFRARED)})
