"""Plain records shared by the readers, the input pipeline and the evaluation.

Readers turn an on-disk dataset into these; everything downstream works on them,
so SYSU-MM01, RegDB and the synthetic data look the same to the rest of the code.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from vireid_jax.data.image_store import EncodedImages

VISIBLE = 0
INFRARED = 1
MODALITY_NAMES = {VISIBLE: "visible", INFRARED: "infrared"}


@dataclasses.dataclass(frozen=True)
class ImageRecord:
  """One image file.

  Attributes:
    path: absolute path of the image file.
    label: training class in 0..num_classes-1 for training records; the
      dataset's person id for test records.
    camera: the dataset's camera number (SYSU 1..6; RegDB 1 visible, 2 thermal).
    modality: VISIBLE or INFRARED.
  """
  path: str
  label: int
  camera: int
  modality: int


@dataclasses.dataclass(frozen=True)
class TrainSet:
  """Training images of both modalities with relabelled identities."""
  visible: tuple[ImageRecord, ...]
  infrared: tuple[ImageRecord, ...]
  num_classes: int
  # Original person id of each class, index = class label.
  class_pids: tuple[int, ...]
  # Where the pixels come from: None = the files at the records' paths; else the
  # prepared images of the TFDS source, by path (data.source=tfds).
  images: EncodedImages | None = dataclasses.field(default=None, compare=False, repr=False)

  @property
  def num_images(self) -> int:
    return len(self.visible) + len(self.infrared)


def check_dataset_root(root: str, required: Sequence[str], dataset: str,
                       how_to_get: str) -> None:
  """Raises FileNotFoundError naming every missing entry under `root`."""
  if not root:
    raise FileNotFoundError(
        f"No {dataset} root given. Set --config.data.root=/path/to/{dataset}. "
        f"{how_to_get}")
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f"{dataset} root {root!r} is not a directory. {how_to_get}")
  missing = [r for r in required if not os.path.exists(os.path.join(root, r))]
  if missing:
    raise FileNotFoundError(
        f"{dataset} root {root!r} is incomplete: missing "
        + ", ".join(repr(os.path.join(root, m)) for m in missing)
        + f". {how_to_get}")
