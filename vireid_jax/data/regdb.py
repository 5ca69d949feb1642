"""RegDB on disk -> records. Plain numpy/stdlib: runs where TensorFlow is absent.

Layout (docs/method.md, "Datasets on disk"):

    ROOT/Visible/<id>/*.bmp   ROOT/Thermal/<id>/*.bmp
    ROOT/idx/{train,test}_{visible,thermal}_{t}.txt, t = 1..10,
        each line "<path relative to ROOT> <integer label>"

The idx files are the 10 train/test splits used by the AGW/DDAG/CAJ code; we
read labels exactly as written. Train labels must be contiguous 0..C-1 and the
same set in both modalities, else we refuse the files (a silent relabelling
would hide a broken split). Test labels are used only for equality; the files
we generate use the person's 0-based index (folder id - 1).
"""

from __future__ import annotations

import dataclasses
import os

from vireid_jax.data.records import (INFRARED, VISIBLE, ImageRecord, TrainSet,
                                     check_dataset_root)
from vireid_jax.errors import DataError

VISIBLE_CAMERA = 1
THERMAL_CAMERA = 2
TRIALS = tuple(range(1, 11))
HOW_TO_GET = (
    "RegDB cannot be downloaded automatically: request it from the Dongguk University "
    "dataset page (http://dm.dgu.edu/link.html), unpack it so that ROOT contains Visible/, "
    "Thermal/ and idx/ (the 10-trial split files train_visible_{t}.txt, train_thermal_{t}.txt, "
    "test_visible_{t}.txt, test_thermal_{t}.txt from the AGW/DDAG code), and pass "
    "--config.data.root=ROOT. For a synthetic stand-in in the same layout: "
    "python -m vireid_jax.data.synthetic --layout=regdb --out=DIR.")


@dataclasses.dataclass(frozen=True)
class RegdbTestSet:
  """One trial's test split; labels as in the idx files."""
  visible: tuple[ImageRecord, ...]
  thermal: tuple[ImageRecord, ...]


def _check_trial(trial) -> int:
  try:
    t = int(trial)
  except (TypeError, ValueError):
    t = 0
  if isinstance(trial, bool) or t not in TRIALS or (isinstance(trial, float) and t != trial):
    raise ValueError(f"RegDB trial={trial!r}: use an integer 1..10 (--config.data.trial).")
  return t


def _root(root: str, files: tuple[str, ...]) -> str:
  root = os.path.abspath(os.path.expanduser(root)) if root else root
  check_dataset_root(root, ("Visible", "Thermal") + files, "RegDB", HOW_TO_GET)
  return root


def read_index(root: str, rel_file: str) -> list[tuple[str, int, str]]:
  """Parses an idx file into [(absolute path, label, relative path)], checking each file exists."""
  index_path = os.path.join(root, rel_file)
  entries = []
  try:
    with open(index_path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError:
    raise DataError(f"{index_path} is not a text file of '<path> <label>' lines. Re-copy the idx "
                    f"files (AGW/DDAG RegDB splits). {HOW_TO_GET}") from None
  for lineno, line in enumerate(lines, start=1):
    line = line.strip()
    if not line:
      continue
    parts = line.split()
    try:
      if len(parts) != 2:
        raise ValueError
      rel, label = parts[0].replace("\\", "/"), int(parts[1])
    except ValueError:
      raise DataError(
          f"{index_path}, line {lineno}: {line!r} is not '<path relative to ROOT> <integer "
          f"label>'. Re-copy the idx files (AGW/DDAG RegDB splits). {HOW_TO_GET}") from None
    path = os.path.normpath(os.path.join(root, rel))
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"{index_path}, line {lineno} names {rel!r}, but {path!r} does not exist. Is ROOT "
          f"the folder that holds Visible/ and Thermal/? {HOW_TO_GET}")
    entries.append((path, label, rel))
  if not entries:
    raise DataError(f"{index_path} lists no images. {HOW_TO_GET}")
  return entries


def folder_id(rel: str) -> int | None:
  """The <id> of "Visible/<id>/name.bmp", or None if that folder name is not a number."""
  parts = rel.split("/")
  return int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else None


def load_train(root: str, trial: int) -> TrainSet:
  """Training records of one trial, labels as in idx/train_{visible,thermal}_{trial}.txt."""
  trial = _check_trial(trial)
  names = (f"idx/train_visible_{trial}.txt", f"idx/train_thermal_{trial}.txt")
  root = _root(root, names)
  vis, th = read_index(root, names[0]), read_index(root, names[1])
  vis_labels, th_labels = {e[1] for e in vis}, {e[1] for e in th}
  for name, labels in zip(names, (vis_labels, th_labels)):
    expected = set(range(len(labels)))
    if labels != expected:
      raise DataError(
          f"{os.path.join(root, name)}: training labels must be contiguous 0..{len(labels) - 1}, "
          f"but {sorted(labels ^ expected)[:10]} break that. Use the original idx files, or "
          "relabel the classes 0..C-1.")
  if vis_labels != th_labels:
    raise DataError(
        f"{os.path.join(root, names[0])} and {names[1]} have different label sets "
        f"({len(vis_labels)} vs {len(th_labels)} classes): each training identity needs images "
        "in both modalities.")
  num_classes = len(vis_labels)
  folders = {}
  for _, label, rel in vis + th:
    folders.setdefault(label, set()).add(folder_id(rel))
  class_pids = tuple(
      next(iter(folders[c])) if len(folders[c]) == 1 and None not in folders[c] else c
      for c in range(num_classes))
  return TrainSet(
      visible=tuple(ImageRecord(p, label, VISIBLE_CAMERA, VISIBLE) for p, label, _ in vis),
      infrared=tuple(ImageRecord(p, label, THERMAL_CAMERA, INFRARED) for p, label, _ in th),
      num_classes=num_classes, class_pids=class_pids)


def load_test(root: str, trial: int) -> RegdbTestSet:
  """Test records of one trial from idx/test_{visible,thermal}_{trial}.txt."""
  trial = _check_trial(trial)
  names = (f"idx/test_visible_{trial}.txt", f"idx/test_thermal_{trial}.txt")
  root = _root(root, names)
  vis, th = read_index(root, names[0]), read_index(root, names[1])
  return RegdbTestSet(
      visible=tuple(ImageRecord(p, label, VISIBLE_CAMERA, VISIBLE) for p, label, _ in vis),
      thermal=tuple(ImageRecord(p, label, THERMAL_CAMERA, INFRARED) for p, label, _ in th))
