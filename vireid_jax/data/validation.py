"""Validation on held-out training identities: which identities, the split, the protocol.

Choosing the best checkpoint on the test identities (what the reference
recipes do) lets the test set leak into training choices. Holding out some
training identities instead gives a number to select on that the test set
never sees: SYSU-MM01 names them (`exp/val_id.txt`); for datasets that name
none (RegDB, LLCM) a seeded draw of the training identities is held out.
The model is trained without them. Pure numpy and stdlib.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vireid_jax.data.protocol import IgnoresOwnCamera, ModalityImages, Row, Suite, fixed
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet


@dataclasses.dataclass(frozen=True)
class ValidationSet:
  """The held-out identities' images; labels are the dataset's person ids."""
  visible: tuple[ImageRecord, ...]
  infrared: tuple[ImageRecord, ...]
  ids: tuple[int, ...]


def drawn_ids(class_pids: Sequence[int], fraction: float, seed: int) -> tuple[int, ...]:
  """`fraction` of the identities (at least one), drawn with `seed`; ascending."""
  pids = sorted(int(p) for p in class_pids)
  count = max(1, int(round(float(fraction) * len(pids))))
  chosen = np.random.default_rng(int(seed)).choice(len(pids), size=count, replace=False)
  return tuple(sorted(pids[i] for i in chosen))


def split(train_set: TrainSet, held_out: Sequence[int],
          what: str = "the validation identities") -> tuple[TrainSet, ValidationSet]:
  """(training set without `held_out`, their images): the rest relabelled 0..C-1 in order.

  Raises ValueError when none of `held_out` is a training identity, or when
  fewer than two training identities would remain (a classifier needs two).
  """
  keep_out = {int(p) for p in held_out} & set(train_set.class_pids)
  if not keep_out:
    raise ValueError(f"None of {what} ({len(set(held_out))} ids) is among the "
                     f"{train_set.num_classes} training identities: nothing to validate on.")
  kept = [pid for pid in train_set.class_pids if pid not in keep_out]
  if len(kept) < 2:
    raise ValueError(f"Holding out {what} ({len(keep_out)} ids) leaves {len(kept)} of the "
                     f"{train_set.num_classes} training identities; at least 2 must remain.")
  new_label = {pid: label for label, pid in enumerate(kept)}

  def parts(records):
    train, val = [], []
    for r in records:
      pid = train_set.class_pids[r.label]
      if pid in keep_out:
        val.append(dataclasses.replace(r, label=pid))
      else:
        train.append(dataclasses.replace(r, label=new_label[pid]))
    return tuple(train), tuple(val)

  visible, val_visible = parts(train_set.visible)
  infrared, val_infrared = parts(train_set.infrared)
  train = dataclasses.replace(train_set, visible=visible, infrared=infrared,
                              num_classes=len(kept), class_pids=tuple(kept))
  return train, ValidationSet(val_visible, val_infrared, tuple(sorted(keep_out)))


def _infrared(val: ValidationSet) -> ModalityImages:
  return ModalityImages.from_records(val.infrared)


def _visible(val: ValidationSet) -> ModalityImages:
  return ModalityImages.from_records(val.visible)


def _describe(val: ValidationSet) -> str:
  return (f"{len(val.ids)} held-out training ids, {len(val.infrared)} infrared queries, "
          f"{len(val.visible)} visible gallery images")


# Infrared queries against every visible image of the held-out identities; a query
# ignores its own identity's images from its own camera (LLCM's rule; no effect where
# the two modalities' cameras differ, as in SYSU-MM01 and RegDB).
SUITE = Suite(
    "validation",
    rows=(Row("infrared_to_visible", INFRARED, VISIBLE, fixed(_infrared, _visible),
              rule=IgnoresOwnCamera(), per_trial=False),),
    headline=("infrared_to_visible", "rank1"), rank_list_row="infrared_to_visible",
    describe=_describe,
    images_by_modality=lambda val: {VISIBLE: _visible(val), INFRARED: _infrared(val)})
