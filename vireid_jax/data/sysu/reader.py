"""SYSU-MM01 on disk -> records. Plain numpy/stdlib: runs where TensorFlow is absent.

Layout (docs/method.md, "Datasets on disk"):

    ROOT/cam1 .. cam6/PPPP/NNNN.jpg    RGB cameras 1, 2, 4, 5; IR cameras 3, 6
    ROOT/exp/train_id.txt, val_id.txt, test_id.txt   one line of comma-separated ids

The orderings follow the AGW baseline's `pre_process_sysu` / `process_query_sysu`
so that results (and random gallery draws) line up with the PyTorch codebases.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from vireid_jax.data import lists
from vireid_jax.data.records import (INFRARED, VISIBLE, ImageRecord, TrainSet,
                                     check_dataset_root)
from vireid_jax.errors import DataError

RGB_CAMERAS = (1, 2, 4, 5)
IR_CAMERAS = (3, 6)
INDOOR_CAMERAS = (1, 2)
CAMERA_DIRS = tuple(f"cam{c}" for c in range(1, 7))
HOW_TO_GET = (
    "SYSU-MM01 cannot be downloaded automatically: request it from the authors "
    "(https://github.com/wuancong/SYSU-MM01), unpack it so that ROOT contains "
    "cam1 ... cam6 and exp/ (train_id.txt, val_id.txt, test_id.txt), and pass "
    "--config.data.root=ROOT. For a synthetic stand-in in the same layout: "
    "python -m vireid_jax.data.synthetic --layout=sysu --out=DIR.")
SOURCE = lists.Source("SYSU-MM01", HOW_TO_GET)


@dataclasses.dataclass(frozen=True)
class SysuTestSet:
  """The SYSU-MM01 test split.

  Attributes:
    query: every IR image (cameras 3 and 6) of the test ids, ordered as the
      AGW baseline's process_query_sysu: ids ascending, camera 3 then 6,
      sorted files. label = person id.
    gallery_files: (person id, camera) -> sorted absolute paths, for the RGB
      cameras 1, 2, 4, 5, only where that folder exists and holds images. The
      evaluation draws single/multi-shot galleries from these lists.
    test_ids: the test person ids, ascending.
  """
  query: tuple[ImageRecord, ...]
  gallery_files: dict[tuple[int, int], tuple[str, ...]]
  test_ids: tuple[int, ...]


def read_id_file(path: str) -> tuple[int, ...]:
  """Parses one of exp/*_id.txt: comma-separated ints (line breaks tolerated)."""
  return lists.read_id_list(path, SOURCE)


def person_images(root: str, camera: int, pid: int) -> tuple[str, ...]:
  """Sorted absolute paths of ROOT/camK/PPPP/*; empty if the folder is absent."""
  return lists.image_files(os.path.join(root, f"cam{camera}", f"{pid:04d}"))


def _root(root: str, id_files: tuple[str, ...]) -> str:
  root = os.path.abspath(os.path.expanduser(root)) if root else root
  check_dataset_root(root, CAMERA_DIRS + tuple(f"exp/{n}" for n in id_files), "SYSU-MM01",
                     HOW_TO_GET)
  return root


def load_train(root: str) -> TrainSet:
  """Train + val ids of SYSU-MM01, relabelled 0..C-1 in ascending id order.

  Ids listed in the id files that have no image at all are dropped (with a
  warning naming them) so that labels stay contiguous.
  """
  root = _root(root, ("train_id.txt", "val_id.txt"))
  ids = sorted(set(read_id_file(os.path.join(root, "exp", "train_id.txt")))
               | set(read_id_file(os.path.join(root, "exp", "val_id.txt"))))
  files = {pid: ({c: person_images(root, c, pid) for c in RGB_CAMERAS},
                 {c: person_images(root, c, pid) for c in IR_CAMERAS}) for pid in ids}
  has_vis = {pid for pid in ids if any(files[pid][0].values())}
  has_ir = {pid for pid in ids if any(files[pid][1].values())}
  empty = [pid for pid in ids if pid not in has_vis | has_ir]
  if empty:
    logging.warning("SYSU-MM01 at %s: training ids %s are listed in exp/train_id.txt or "
                    "exp/val_id.txt but have no images in cam1..cam6; dropped.", root, empty)
  one_sided = [pid for pid in ids if (pid in has_vis) != (pid in has_ir)]
  if one_sided:
    logging.warning("SYSU-MM01 at %s: training ids %s have images of one modality only; "
                    "paired (visible + infrared) sampling needs both, so add their images or "
                    "remove them from exp/train_id.txt / val_id.txt.", root, one_sided)
  classes = [pid for pid in ids if pid not in empty]
  if not classes:
    raise DataError(f"SYSU-MM01 at {root!r}: none of the {len(ids)} training ids has images "
                     f"under cam1..cam6/PPPP/. {HOW_TO_GET}")
  visible, infrared = [], []
  for label, pid in enumerate(classes):
    rgb, ir = files[pid]
    for cam in RGB_CAMERAS:
      visible.extend(ImageRecord(p, label, cam, VISIBLE) for p in rgb[cam])
    for cam in IR_CAMERAS:
      infrared.extend(ImageRecord(p, label, cam, INFRARED) for p in ir[cam])
  return TrainSet(visible=tuple(visible), infrared=tuple(infrared), num_classes=len(classes),
                  class_pids=tuple(classes))


def validation_ids(root: str) -> tuple[int, ...]:
  """The ids of exp/val_id.txt: the identities SYSU-MM01 sets aside for validation."""
  root = _root(root, ("val_id.txt",))
  return tuple(sorted(set(read_id_file(os.path.join(root, "exp", "val_id.txt")))))


def load_test(root: str) -> SysuTestSet:
  """The query records and the per-(id, camera) gallery file lists of the test ids."""
  root = _root(root, ("test_id.txt",))
  test_ids = tuple(sorted(set(read_id_file(os.path.join(root, "exp", "test_id.txt")))))
  query = []
  for pid in test_ids:
    for cam in IR_CAMERAS:
      query.extend(ImageRecord(p, pid, cam, INFRARED) for p in person_images(root, cam, pid))
  gallery = {}
  for pid in test_ids:
    for cam in RGB_CAMERAS:
      paths = person_images(root, cam, pid)
      if paths:
        gallery[(pid, cam)] = paths
  query_ids = {q.label for q in query}
  missing = [pid for pid in test_ids if pid not in query_ids
             and not any((pid, c) in gallery for c in RGB_CAMERAS)]
  if missing:
    logging.warning("SYSU-MM01 at %s: test ids %s have no images in cam1..cam6.", root, missing)
  if not query:
    raise DataError(f"SYSU-MM01 at {root!r}: no IR query images (cam3/cam6) for the test ids "
                    f"in exp/test_id.txt. {HOW_TO_GET}")
  if not gallery:
    raise DataError(f"SYSU-MM01 at {root!r}: no RGB gallery images (cam1/cam2/cam4/cam5) for the "
                    f"test ids in exp/test_id.txt. {HOW_TO_GET}")
  return SysuTestSet(query=tuple(query), gallery_files=gallery, test_ids=test_ids)
