"""`generate`: checks the arguments, runs the dataset's layout writer, marks the folder complete.

Each dataset declares its layout writer (`dataset.SyntheticLayout`), which
draws with the shared renderer (`vireid_jax.data.render`); the registry says
which datasets have one.
"""

from __future__ import annotations

import os
from typing import Sequence

from vireid_jax.data import registry
from vireid_jax.data.synthetic.marker import read_marker, write_marker


def layouts() -> tuple[str, ...]:
  """The layouts the generator writes: every dataset that declares one."""
  return registry.synthetic_layouts()


def layout_of(name: str):
  """The dataset's `SyntheticLayout`; ValueError for a name without one."""
  if name not in layouts():
    raise ValueError(f"layout={name!r}: use one of {layouts()}.")
  return registry.get(name).synthetic


def _check_args(name: str, out: str, num_ids: int, images_per_cam,
                image_size) -> tuple[int, int]:
  layout = layout_of(name)
  if num_ids < layout.min_ids:
    raise ValueError(f"num_ids={num_ids}: the {name} layout needs at least {layout.min_ids} ids "
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
  """Writes a synthetic dataset in a dataset's on-disk layout under `out`.

  Args:
    layout: the dataset whose layout to write (`layouts()`).
    out: a new or empty folder; it receives the completion marker (`marker.MARKER_NAME`)
      last, after every image and list file.
    num_ids: number of identities (split as the layout splits them).
    seed: the same seed gives byte-identical files.
    images_per_cam: (min, max) images per (identity, camera), inclusive; the
      layout's default when None.
    image_size: (height, width) of every image.
    test_ids, val_ids: identities in the test and validation splits, for
      layouts that take them (default: the layout's shares).
    workers: processes that render images (the files do not depend on it).
  """
  spec = layout_of(layout)
  images_per_cam = images_per_cam or spec.images_per_cam
  lo, hi = _check_args(layout, out, num_ids, images_per_cam, image_size)
  h, w = (int(v) for v in image_size)
  if int(workers) < 1:
    raise ValueError(f"workers={workers}: give 1 or more processes.")
  split = {}
  if spec.split is not None:
    split = spec.split(num_ids, test_ids, val_ids)
  elif test_ids is not None or val_ids is not None:
    raise ValueError(f"test_ids and val_ids set a split, but {registry.get(layout).title} "
                     "splits its own way (its list files define the splits).")
  os.makedirs(out, exist_ok=True)
  spec.write(out, num_ids, seed, lo, hi, h, w, workers=workers, **split)
  write_marker(out, layout=layout, num_ids=num_ids, seed=seed, images_per_cam=(lo, hi),
               image_size=(h, w), **({} if test_ids is None and val_ids is None else split))
