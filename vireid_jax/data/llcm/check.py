"""What `python -m vireid_jax.data.check --dataset=llcm` looks at beyond the images."""

from __future__ import annotations

import os

from vireid_jax.data import scan as scan_lib
from vireid_jax.data.llcm import reader
from vireid_jax.data.records import INFRARED, MODALITY_NAMES, VISIBLE


def scan(root: str, splits, decode: bool, report: scan_lib.Report) -> None:
  """The lists, counts per camera, ids in train and test or in one modality, and every image."""
  del splits
  sets = scan_lib.read(report, lambda: reader.load_train(root), lambda: reader.load_test(root))
  if sets is None:
    return
  train, test = sets
  report.info(f"{reader.TRAIN_LISTS[0]} and {reader.TRAIN_LISTS[1]}: {train.num_classes} "
              f"classes; {reader.TEST_ID_LIST}: {len(test.test_ids)} ids")
  scan_lib.counts(report, "train (classes)", train.visible + train.infrared)
  scan_lib.counts(report, "test", test.visible + test.infrared)
  scan_lib.training_modalities(report, train)
  both = sorted(set(train.class_pids) & set(test.test_ids))
  if both:
    report.problem(f"ids {both[:10]} are in both the training lists and {reader.TEST_ID_LIST}")
  for modality in (VISIBLE, INFRARED):
    ids = {r.label for r in test.records(modality)}
    absent = sorted(set(test.test_ids) - ids)
    if absent:
      report.info(f"test ids without {MODALITY_NAMES[modality]} images: {absent[:10]} (their "
                  "queries of the other modality find no positive and are skipped)")
  extra = os.path.join(os.path.abspath(root), reader.TEST_FOLDERS[INFRARED], "cam3")
  if os.path.isdir(extra):
    report.info(f"{extra} is not read: the near-infrared side has no camera 3")
  if decode:
    scan_lib.check_files(train.visible + train.infrared + test.visible + test.infrared, report,
                         set())
