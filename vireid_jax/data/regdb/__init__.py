"""RegDB (Nguyen et al., Sensors 2017): 412 identities, one co-registered visible/thermal camera pair.

Everything the code knows about RegDB is in this package: the reader
(`reader`), the check (`check`), the synthetic layout (`layout`) and, below,
the test protocol and the declaration that ties them together (`DATASET`,
listed in `vireid_jax.data.registry`). Each of the ten train/test splits
(`data.trial`) trains its own model.
"""

from __future__ import annotations

import os

from vireid_jax.data.dataset import Dataset, SyntheticLayout, TfdsLayout
from vireid_jax.data.protocol import ModalityImages, Row, Suite, fixed
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.data.regdb import check, layout
from vireid_jax.data.regdb.reader import (HOW_TO_GET, THERMAL_CAMERA, TRIALS, VISIBLE_CAMERA,
                                          RegdbTestSet, folder_id, load_test, load_train,
                                          read_index)


def images_by_modality(test_set: RegdbTestSet) -> dict[int, ModalityImages]:
  """The visible and thermal images of the trial split."""
  return {VISIBLE: ModalityImages.from_records(test_set.visible),
          INFRARED: ModalityImages.from_records(test_set.thermal)}


def _visible(test_set):
  return images_by_modality(test_set)[VISIBLE]


def _thermal(test_set):
  return images_by_modality(test_set)[INFRARED]


def describe(test_set: RegdbTestSet) -> str:
  ids = len({r.label for r in test_set.visible})
  return (f"{ids} test ids, {len(test_set.visible)} visible + {len(test_set.thermal)} "
          "thermal images")


# Plain CMC, no camera rule; one split per run (the ten splits are averaged across runs).
SUITE = Suite(
    "regdb",
    rows=(Row("visible_to_thermal", VISIBLE, INFRARED, fixed(_visible, _thermal),
              distinct_ids=False, per_trial=False),
          Row("thermal_to_visible", INFRARED, VISIBLE, fixed(_thermal, _visible),
              distinct_ids=False, per_trial=False)),
    headline=("visible_to_thermal", "rank1"), rank_list_row="thermal_to_visible",
    describe=describe, images_by_modality=images_by_modality,
    gallery_rules=("baseline", "official"),      # nothing is drawn: the rule changes nothing
    records_split=True)


def _person_ids(records) -> list[int]:
  """The folder id of each image (the label where the folder is not a number)."""
  ids = [folder_id(r.path.replace(os.sep, "/")) for r in records]
  return [r.label if pid is None else pid for r, pid in zip(records, ids)]


def _tfds_test_splits(test_set: RegdbTestSet):
  return {"test_visible": (test_set.visible, _person_ids(test_set.visible)),
          "test_thermal": (test_set.thermal, _person_ids(test_set.thermal))}


DATASET = Dataset(
    name="regdb",
    title="RegDB",
    image_size=(288, 144),
    how_to_get=HOW_TO_GET,
    load_train=load_train,
    load_test=load_test,
    test_paths=lambda test_set: (("thermal", [r.path for r in test_set.thermal]),
                                 ("visible", [r.path for r in test_set.visible])),
    test_lists="idx/test_*.txt",
    suite=SUITE,
    scan=check.scan,
    tfds=TfdsLayout(
        builder_name="regdb",
        description=("RegDB: 412 identities, 10 co-registered visible and thermal images each. "
                     "label is as written in the idx files."),
        homepage="http://dm.dgu.edu/link.html",
        instructions=(
            "Request RegDB from the Dongguk University dataset page (http://dm.dgu.edu/link.html) "
            "and unpack it so that manual_dir contains Visible/, Thermal/ and idx/ with the "
            "10-trial split files (train_visible_{t}.txt, train_thermal_{t}.txt, "
            "test_visible_{t}.txt, test_thermal_{t}.txt). Then run python -m "
            "vireid_jax.data.prepare_tfds --dataset=regdb --manual_dir=ROOT --data_dir=DATA_DIR."),
        test_splits=_tfds_test_splits,
        test_set=lambda records, metadata: RegdbTestSet(visible=records["test_visible"],
                                                        thermal=records["test_thermal"])),
    synthetic=SyntheticLayout(write=layout.write, images_per_cam=(10, 10), min_ids=4,
                              sheet_cells=layout.sheet_cells),
    splits=TRIALS,
)
