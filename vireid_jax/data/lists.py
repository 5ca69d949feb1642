"""The list files datasets ship, read one way for every dataset.

Two formats: a line of comma-separated person ids (`read_id_list`), and lines
"<path relative to ROOT> <integer label>" (`read_labelled_list`). A training
set given as two labelled lists, one per modality, is read and checked by
`labelled_train_set`. Every refusal names the file (and line) and what to do.
Plain stdlib/numpy: runs where TensorFlow is absent.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Sequence

from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet
from vireid_jax.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_CAMERA_FOLDER = re.compile(r"^cam(\d+)$")


@dataclasses.dataclass(frozen=True)
class Source:
  """Where a dataset's lists come from, for the messages: its name and how to get it again."""
  title: str             # "SYSU-MM01"
  how_to_get: str        # the sentence or two that says where the files come from
  recopy: str = ""       # "Re-copy the idx files (...)." (labelled lists)
  root_hint: str = ""    # "Is ROOT the folder that holds ...?" (a listed file is missing)


def read_id_list(path: str, source: Source) -> tuple[int, ...]:
  """Parses a list of comma-separated person ids (line breaks tolerated)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{source.title} id list {path!r} is missing. {source.how_to_get}")
  archive = f"re-copy it from the {source.title} archive"
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except UnicodeDecodeError:
    raise DataError(f"{path} is not a text file of comma-separated person ids: "
                    f"{archive}.") from None
  ids = []
  for token in text.replace("\n", ",").replace("\r", ",").split(","):
    token = token.strip()
    if not token:
      continue
    try:
      ids.append(int(token))
    except ValueError:
      raise DataError(
          f"{path}: {token!r} is not an integer person id. The file must hold one line of "
          f"comma-separated ids, e.g. '1,2,4,5'. {archive[0].upper()}{archive[1:]}.") from None
  if not ids:
    raise DataError(f"{path} lists no person ids: {archive}.")
  return tuple(ids)


def read_labelled_list(root: str, rel_file: str, source: Source) -> list[tuple[str, int, str]]:
  """Parses lines "<path> <label>" into [(absolute path, label, relative path)].

  Every listed file must exist; an empty list is refused.
  """
  list_path = os.path.join(root, rel_file)
  entries = []
  try:
    with open(list_path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError:
    raise DataError(f"{list_path} is not a text file of '<path> <label>' lines. {source.recopy} "
                    f"{source.how_to_get}") from None
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
          f"{list_path}, line {lineno}: {line!r} is not '<path relative to ROOT> <integer "
          f"label>'. {source.recopy} {source.how_to_get}") from None
    path = os.path.normpath(os.path.join(root, rel))
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"{list_path}, line {lineno} names {rel!r}, but {path!r} does not exist. "
          f"{source.root_hint} {source.how_to_get}")
    entries.append((path, label, rel))
  if not entries:
    raise DataError(f"{list_path} lists no images. {source.how_to_get}")
  return entries


def folder_id(rel: str) -> int | None:
  """The number naming the folder that holds a file ("Visible/12/x.bmp" -> 12), or None."""
  parts = rel.split("/")
  return int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else None


def camera_of(rel: str) -> int:
  """The K of a "camK" folder on the path ("test_vis/cam4/0012/x.jpg" -> 4), else 0."""
  for part in reversed(rel.split("/")[:-1]):
    match = _CAMERA_FOLDER.match(part)
    if match:
      return int(match.group(1))
  return 0


def labelled_train_set(root: str, lists: Sequence[str], source: Source,
                       camera: Callable[[int, str], int]) -> TrainSet:
  """The training set of two labelled lists (visible, infrared), labels as written.

  Labels must be 0..C-1 and the same set in both modalities, else the lists
  are refused (a silent relabelling would hide a broken split). A class's
  person id is the number of the folder holding its images when they agree,
  else the class label. `camera(modality, relative path)` gives each record's camera.
  """
  vis, ir = (read_labelled_list(root, name, source) for name in lists)
  vis_labels, ir_labels = {e[1] for e in vis}, {e[1] for e in ir}
  for name, labels in zip(lists, (vis_labels, ir_labels)):
    expected = set(range(len(labels)))
    if labels != expected:
      raise DataError(
          f"{os.path.join(root, name)}: training labels must be contiguous 0..{len(labels) - 1}, "
          f"but {sorted(labels ^ expected)[:10]} break that. Use the original lists, or "
          "relabel the classes 0..C-1.")
  if vis_labels != ir_labels:
    raise DataError(
        f"{os.path.join(root, lists[0])} and {lists[1]} have different label sets "
        f"({len(vis_labels)} vs {len(ir_labels)} classes): each training identity needs images "
        "in both modalities.")
  num_classes = len(vis_labels)
  folders = {}
  for _, label, rel in vis + ir:
    folders.setdefault(label, set()).add(folder_id(rel))
  class_pids = tuple(
      next(iter(folders[c])) if len(folders[c]) == 1 and None not in folders[c] else c
      for c in range(num_classes))
  return TrainSet(
      visible=tuple(ImageRecord(p, label, camera(VISIBLE, rel), VISIBLE) for p, label, rel in vis),
      infrared=tuple(ImageRecord(p, label, camera(INFRARED, rel), INFRARED)
                     for p, label, rel in ir),
      num_classes=num_classes, class_pids=class_pids)


def image_files(folder: str) -> tuple[str, ...]:
  """Sorted absolute paths of the image files in `folder`; empty if the folder is absent."""
  if not os.path.isdir(folder):
    return ()
  return tuple(sorted(
      os.path.join(folder, name) for name in os.listdir(folder)
      if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
      and os.path.isfile(os.path.join(folder, name))))
