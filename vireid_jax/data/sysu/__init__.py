"""SYSU-MM01 (Wu et al., ICCV 2017): 491 identities, 4 visible and 2 near-infrared cameras.

Everything the code knows about SYSU-MM01 is in this package: the reader
(`reader`), the test protocol (`protocol`), the check (`check`), the
synthetic layout (`layout`) and, below, the declaration that ties them
together (`DATASET`, listed in `vireid_jax.data.registry`).
"""

from __future__ import annotations

import collections

from vireid_jax.data.dataset import Dataset, SyntheticLayout, TfdsLayout
from vireid_jax.data.records import VISIBLE, ImageRecord
from vireid_jax.data.sysu import check, layout, protocol
from vireid_jax.data.sysu.reader import (CAMERA_DIRS, HOW_TO_GET, INDOOR_CAMERAS, IR_CAMERAS,
                                         RGB_CAMERAS, SysuTestSet, load_test, load_train,
                                         person_images, read_id_file, validation_ids)


def gallery_records(test_set: SysuTestSet) -> list[ImageRecord]:
  """Every visible test image, grouped by (person id, camera); label = person id."""
  return [ImageRecord(p, pid, cam, VISIBLE)
          for (pid, cam), paths in test_set.gallery_files.items() for p in paths]


def _test_paths(test_set: SysuTestSet):
  return (("query (infrared, cam3/cam6)", [r.path for r in test_set.query]),
          ("gallery (visible, cam1/cam2/cam4/cam5)", [r.path for r in gallery_records(test_set)]))


def _tfds_test_splits(test_set: SysuTestSet):
  gallery = gallery_records(test_set)
  return {"query": (test_set.query, [r.label for r in test_set.query]),
          "gallery": (gallery, [r.label for r in gallery])}


def _tfds_test_set(records, metadata) -> SysuTestSet:
  gallery = collections.defaultdict(list)
  for r in records["gallery"]:
    gallery[(r.label, r.camera)].append(r.path)
  return SysuTestSet(query=records["query"],
                     gallery_files={k: tuple(v) for k, v in gallery.items()},
                     test_ids=tuple(int(i) for i in metadata["test_ids"]))


DATASET = Dataset(
    name="sysu",
    title="SYSU-MM01",
    image_size=(288, 144),
    how_to_get=HOW_TO_GET,
    load_train=lambda root, split: load_train(root),
    load_test=lambda root, split: load_test(root),
    test_paths=_test_paths,
    test_lists="exp/test_id.txt",
    suite=protocol.SUITE,
    scan=check.scan,
    validation_ids=validation_ids,
    tfds=TfdsLayout(
        builder_name="sysu_mm01",
        description=("SYSU-MM01: 491 identities seen by 4 RGB and 2 near-infrared cameras. "
                     "label is the training class (train) or the person id (query, gallery)."),
        homepage="https://github.com/wuancong/SYSU-MM01",
        instructions=(
            "Request SYSU-MM01 from the authors (https://github.com/wuancong/SYSU-MM01) and "
            "unpack it so that manual_dir contains cam1 ... cam6 and exp/ (train_id.txt, "
            "val_id.txt, test_id.txt). Then run python -m vireid_jax.data.prepare_tfds "
            "--dataset=sysu --manual_dir=ROOT --data_dir=DATA_DIR."),
        test_splits=_tfds_test_splits,
        test_set=_tfds_test_set,
        test_metadata=lambda test_set: {"test_ids": list(test_set.test_ids)}),
    synthetic=SyntheticLayout(write=layout.write, images_per_cam=(4, 12), min_ids=5,
                              sheet_cells=layout.sheet_cells, split=layout.split),
)
