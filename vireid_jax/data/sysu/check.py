"""What `python -m vireid_jax.data.check --dataset=sysu` looks at beyond the images."""

from __future__ import annotations

import os

from vireid_jax.data import scan as scan_lib
from vireid_jax.data.records import VISIBLE, ImageRecord
from vireid_jax.data.sysu import reader


def scan(root: str, splits, decode: bool, report: scan_lib.Report) -> None:
  """The id lists, counts per camera, ids without images, and (decode) every image."""
  del splits
  sets = scan_lib.read(report, lambda: reader.load_train(root), lambda: reader.load_test(root))
  if sets is None:
    return
  train, test = sets
  root = os.path.abspath(root)
  listed = {}
  for split in ("train", "val", "test"):
    listed[split] = reader.read_id_file(os.path.join(root, "exp", f"{split}_id.txt"))
    report.info(f"exp/{split}_id.txt: {len(listed[split])} ids")
  overlap = (set(listed["train"]) | set(listed["val"])) & set(listed["test"])
  if overlap:
    report.problem(f"ids {sorted(overlap)} are in both the training and the test lists")
  gallery = [ImageRecord(p, pid, cam, VISIBLE)
             for (pid, cam), paths in test.gallery_files.items() for p in paths]
  scan_lib.counts(report, "train (classes)", train.visible + train.infrared)
  scan_lib.counts(report, "test query", test.query)
  scan_lib.counts(report, "test gallery", gallery)
  train_missing = sorted((set(listed["train"]) | set(listed["val"])) - set(train.class_pids))
  if train_missing:
    report.problem(f"training ids without any image: {train_missing}")
  scan_lib.training_modalities(report, train)
  query_ids = {r.label for r in test.query}
  gallery_ids = {pid for pid, _ in test.gallery_files}
  no_query = sorted(set(test.test_ids) - query_ids)
  no_gallery = sorted(set(test.test_ids) - gallery_ids)
  no_indoor = sorted(set(test.test_ids) - {pid for pid, cam in test.gallery_files
                                           if cam in reader.INDOOR_CAMERAS})
  if no_query:
    report.info(f"test ids without IR (query) images: {no_query}")
  if no_gallery:
    report.problem(f"test ids without any RGB (gallery) image: {no_gallery}")
  if no_indoor:
    report.info(f"test ids without indoor (cam1/cam2) RGB images: {no_indoor} "
                "(left out of indoor-search)")
  if decode:
    scan_lib.check_files(train.visible + train.infrared + test.query + tuple(gallery), report,
                         set())
