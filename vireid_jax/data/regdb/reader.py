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

from vireid_jax.data import lists
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet, check_dataset_root

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
SOURCE = lists.Source("RegDB", HOW_TO_GET,
                      recopy="Re-copy the idx files (AGW/DDAG RegDB splits).",
                      root_hint="Is ROOT the folder that holds Visible/ and Thermal/?")
CAMERAS = {VISIBLE: VISIBLE_CAMERA, INFRARED: THERMAL_CAMERA}


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
  return lists.read_labelled_list(root, rel_file, SOURCE)


folder_id = lists.folder_id


def load_train(root: str, trial: int) -> TrainSet:
  """Training records of one trial, labels as in idx/train_{visible,thermal}_{trial}.txt."""
  trial = _check_trial(trial)
  names = (f"idx/train_visible_{trial}.txt", f"idx/train_thermal_{trial}.txt")
  root = _root(root, names)
  return lists.labelled_train_set(root, names, SOURCE, lambda modality, rel: CAMERAS[modality])


def load_test(root: str, trial: int) -> RegdbTestSet:
  """Test records of one trial from idx/test_{visible,thermal}_{trial}.txt."""
  trial = _check_trial(trial)
  names = (f"idx/test_visible_{trial}.txt", f"idx/test_thermal_{trial}.txt")
  root = _root(root, names)
  vis, th = read_index(root, names[0]), read_index(root, names[1])
  return RegdbTestSet(
      visible=tuple(ImageRecord(p, label, VISIBLE_CAMERA, VISIBLE) for p, label, _ in vis),
      thermal=tuple(ImageRecord(p, label, THERMAL_CAMERA, INFRARED) for p, label, _ in th))
