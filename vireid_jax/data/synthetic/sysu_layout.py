"""Writes the SYSU-MM01 layout: camK/PPPP/NNNN.jpg and exp/{train,val,test}_id.txt."""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

from vireid_jax.data.sysu import IR_CAMERAS, RGB_CAMERAS
from vireid_jax.data.synthetic.cameras import SYSU_CAMERAS, to_infrared, to_visible
from vireid_jax.data.synthetic.identity import sample_person
from vireid_jax.data.synthetic.scenes import make_scene
from vireid_jax.data.synthetic.shot import render_scene, sample_nuisance
from vireid_jax.data.synthetic.workers import run_items


def split_sizes(num_ids: int, test_ids: int | None = None,
                val_ids: int | None = None) -> tuple[int, int]:
  """(test, val) identity counts: about 30% and 10% unless given (SYSU-MM01: 96 and 99 of 491)."""
  n_test = max(1, int(round(0.3 * num_ids))) if test_ids is None else int(test_ids)
  n_val = max(1, int(round(0.1 * num_ids))) if val_ids is None else int(val_ids)
  return n_test, n_val


def plan(num_ids: int, seed: int, lo: int, hi: int, test_ids: int | None = None,
         val_ids: int | None = None):
  """Chooses person ids (with gaps), the split, and which cameras see whom."""
  rng = np.random.default_rng([seed, 3])
  pool = np.arange(1, num_ids + max(2, num_ids // 8) + 1)
  pids = np.sort(rng.choice(pool, num_ids, replace=False))
  n_test, n_val = split_sizes(num_ids, test_ids, val_ids)
  perm = rng.permutation(pids)
  test = sorted(int(v) for v in perm[:n_test])
  val = sorted(int(v) for v in perm[n_test:n_test + n_val])
  train = sorted(int(v) for v in perm[n_test + n_val:])
  # A few test ids are filmed outdoors only (no indoor-search gallery), as in the real data.
  no_indoor = {int(v) for v in rng.choice(test, len(test) // 10, replace=False)}
  counts = {}   # (pid, cam) -> number of images
  for pid in (int(v) for v in pids):
    prng = np.random.default_rng([seed, 4, pid])
    present = {cam: prng.random() < 0.72 for cam in range(1, 7)}
    if pid in no_indoor:
      present[1] = present[2] = False
      if not (present[4] or present[5]):
        present[int(prng.choice([4, 5]))] = True
    elif pid in test and not (present[1] or present[2]):
      present[int(prng.choice([1, 2]))] = True
    if not any(present[c] for c in RGB_CAMERAS):
      present[int(prng.choice(RGB_CAMERAS))] = True
    if not any(present[c] for c in IR_CAMERAS):
      present[int(prng.choice(IR_CAMERAS))] = True
    for cam in range(1, 7):
      if present[cam]:
        counts[(pid, cam)] = int(prng.integers(lo, hi + 1))
  return train, val, test, counts


def write(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int, *,
          test_ids: int | None = None, val_ids: int | None = None, workers: int = 1) -> None:
  train, val, test, counts = plan(num_ids, seed, lo, hi, test_ids, val_ids)
  os.makedirs(os.path.join(out, "exp"), exist_ok=True)
  for name, ids in (("train_id.txt", train), ("val_id.txt", val), ("test_id.txt", test)):
    with open(os.path.join(out, "exp", name), "w") as f:
      f.write(",".join(str(i) for i in ids))
  for cam in range(1, 7):
    os.makedirs(os.path.join(out, f"cam{cam}"), exist_ok=True)
  items = [(out, seed, h, w, pid, cam, n) for (pid, cam), n in sorted(counts.items())]
  run_items(_write_folder, items, workers)


@functools.lru_cache(maxsize=None)
def _scene(name: str, seed: int, h: int, w: int) -> np.ndarray:
  return make_scene(name, seed, h, w)


def _write_folder(item) -> None:
  """The n images of one (person, camera) folder: a pure function of the item."""
  out, seed, h, w, pid, cam, n = item
  spec = SYSU_CAMERAS[cam]
  scene = _scene(spec.scene, seed, h, w)
  person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
  folder = os.path.join(out, f"cam{cam}", f"{pid:04d}")
  os.makedirs(folder, exist_ok=True)
  for k in range(n):
    rng = np.random.default_rng([seed, 6, pid, cam, k])
    nz = sample_nuisance(rng, scene.shape, h, w)
    canvas = render_scene(person, scene, nz, h, w)
    path = os.path.join(folder, f"{k + 1:04d}.jpg")
    if spec.infrared:
      Image.fromarray(to_infrared(canvas, spec, nz, rng), "L").save(path, quality=90)
    else:
      Image.fromarray(to_visible(canvas, spec, nz, rng), "RGB").save(path, quality=90)
