"""`generate`: checks the arguments, runs the writer of the requested layout, marks it complete."""

from __future__ import annotations

import os
from typing import Sequence

from vireid_jax.data.synthetic import regdb_layout, sysu_layout
from vireid_jax.data.synthetic.marker import read_marker, write_marker

LAYOUTS = ("sysu", "regdb")
DEFAULT_IMAGES_PER_CAM = {"sysu": (4, 12), "regdb": (10, 10)}


def _check_args(layout: str, out: str, num_ids: int, images_per_cam, image_size) -> tuple[int, int]:
  if layout not in LAYOUTS:
    raise ValueError(f"layout={layout!r}: use one of {LAYOUTS}.")
  min_ids = 5 if layout == "sysu" else 4
  if num_ids < min_ids:
    raise ValueError(f"num_ids={num_ids}: the {layout} layout needs at least {min_ids} ids "
                     "(train, val and test splits each need identities).")
  lo, hi = (int(v) for v in images_per_cam)
  if not 1 <= lo <= hi:
    raise ValueError(f"images_per_cam={tuple(images_per_cam)}: give (min, max) with "
                     "1 <= min <= max.")
  h, w = (int(v) for v in image_size)
  if h < 32 or w < 16:
    raise ValueError(f"image_size={tuple(image_size)}: give (height, width) of at least (32, 16).")
  if os.path.exists(out) and not os.path.isdir(out):
    raise FileExistsError(f"Output {out!r} is a file: give a new or empty folder.")
  if os.path.isdir(out) and os.listdir(out):
    settings = read_marker(out)
    if settings is not None:
      described = " ".join(f"{k}={v}" for k, v in settings.items())
      raise FileExistsError(f"Output folder {out!r} already holds a synthetic dataset "
                            f"({described}): use it as it is, or give a new or empty folder.")
    raise FileExistsError(f"Output folder {out!r} is not empty and was not made by the synthetic "
                          "generator: give a new or empty folder (nothing in it is touched).")
  return lo, hi


def generate(layout: str, out: str, num_ids: int = 40, seed: int = 0,
             images_per_cam: Sequence[int] | None = None,
             image_size: Sequence[int] = (128, 64), *, test_ids: int | None = None,
             val_ids: int | None = None, workers: int = 1) -> None:
  """Writes a synthetic dataset in the SYSU-MM01 or RegDB layout under `out`.

  Args:
    layout: "sysu" or "regdb".
    out: a new or empty folder; it receives the completion marker (`marker.MARKER_NAME`)
      last, after every image and list file.
    num_ids: number of identities (SYSU: split about 60/10/30 train/val/test;
      RegDB: each of the 10 trials splits them in half).
    seed: the same seed gives byte-identical files.
    images_per_cam: (min, max) images per (identity, camera), inclusive;
      default (4, 12) for SYSU and (10, 10) (the real count) for RegDB, where
      it is the number per identity and modality.
    image_size: (height, width) of every image.
    test_ids, val_ids: SYSU layout: identities in the test and validation
      splits (default about 30% and 10%; SYSU-MM01 itself has 96 and 99 of 491).
    workers: processes that render images (the files do not depend on it).
  """
  images_per_cam = images_per_cam or DEFAULT_IMAGES_PER_CAM.get(layout, (1, 1))
  lo, hi = _check_args(layout, out, num_ids, images_per_cam, image_size)
  h, w = (int(v) for v in image_size)
  if int(workers) < 1:
    raise ValueError(f"workers={workers}: give 1 or more processes.")
  split = {}
  if layout == "sysu":
    n_test, n_val = sysu_layout.split_sizes(num_ids, test_ids, val_ids)
    if min(n_test, n_val) < 1 or n_test + n_val > num_ids - 1:
      raise ValueError(f"test_ids={n_test}, val_ids={n_val} of num_ids={num_ids}: each split "
                       "needs at least one identity and training at least one.")
    split = {"test_ids": n_test, "val_ids": n_val}
  elif test_ids is not None or val_ids is not None:
    raise ValueError("test_ids and val_ids set the SYSU layout's split; RegDB splits each "
                     "of its 10 trials in half.")
  os.makedirs(out, exist_ok=True)
  if layout == "sysu":
    sysu_layout.write(out, num_ids, seed, lo, hi, h, w, workers=workers, **split)
  else:
    regdb_layout.write(out, num_ids, seed, lo, hi, h, w, workers=workers)
  write_marker(out, layout=layout, num_ids=num_ids, seed=seed, images_per_cam=(lo, hi),
               image_size=(h, w), **({} if test_ids is None and val_ids is None else split))
