"""The synthetic SYSU-MM01 layout: camK/PPPP/NNNN.jpg and exp/{train,val,test}_id.txt."""

from __future__ import annotations

import os

import numpy as np

from vireid_jax.data.render.cameras import CameraSpec
from vireid_jax.data.render.folder import write_shots
from vireid_jax.data.render.identity import sample_person
from vireid_jax.data.render.workers import run_items
from vireid_jax.data.sysu.reader import IR_CAMERAS, RGB_CAMERAS

# Camera 3 (infrared) films the room of camera 2, as in the real data.
CAMERAS = {
    1: CameraSpec(1, False, "indoor_a", gain=1.0, cast=(1.08, 1.0, 0.86), blur=0.5, noise=0.012),
    2: CameraSpec(2, False, "indoor_b", gain=0.95, cast=(0.90, 1.0, 1.12), blur=0.6, noise=0.015),
    3: CameraSpec(3, True, "indoor_b", blur=0.8, noise=0.022, contrast=0.85, offset=0.05),
    4: CameraSpec(4, False, "outdoor_a", gain=1.12, cast=(1.03, 1.0, 0.94), blur=0.45, noise=0.01),
    5: CameraSpec(5, False, "outdoor_b", gain=0.82, cast=(0.90, 0.97, 1.10), blur=0.6, noise=0.02),
    6: CameraSpec(6, True, "outdoor_c", blur=1.0, noise=0.028, contrast=0.75, offset=0.08,
                  row_noise=0.015),
}


def split_sizes(num_ids: int, test_ids: int | None = None,
                val_ids: int | None = None) -> tuple[int, int]:
  """(test, val) identity counts: about 30% and 10% unless given (SYSU-MM01: 96 and 99 of 491)."""
  n_test = max(1, int(round(0.3 * num_ids))) if test_ids is None else int(test_ids)
  n_val = max(1, int(round(0.1 * num_ids))) if val_ids is None else int(val_ids)
  return n_test, n_val


def split(num_ids: int, test_ids: int | None, val_ids: int | None) -> dict:
  """The checked split options of `write`."""
  n_test, n_val = split_sizes(num_ids, test_ids, val_ids)
  if min(n_test, n_val) < 1 or n_test + n_val > num_ids - 1:
    raise ValueError(f"test_ids={n_test}, val_ids={n_val} of num_ids={num_ids}: each split "
                     "needs at least one identity and training at least one.")
  return {"test_ids": n_test, "val_ids": n_val}


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


def _write_folder(item) -> None:
  """The n images of one (person, camera) folder: a pure function of the item."""
  out, seed, h, w, pid, cam, n = item
  person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
  write_shots(os.path.join(out, f"cam{cam}", f"{pid:04d}"), CAMERAS[cam], person, seed, h, w,
              (([seed, 6, pid, cam, k], f"{k + 1:04d}.jpg") for k in range(n)))


def sheet_cells(root: str, rows: int):
  """The sample sheet: the best-covered identities, every visible camera, then infrared shots."""
  with open(os.path.join(root, "exp", "test_id.txt")) as f:
    test = [int(t) for t in f.read().split(",") if t.strip()]
  with open(os.path.join(root, "exp", "train_id.txt")) as f:
    train = [int(t) for t in f.read().split(",") if t.strip()]
  cols = [(1, 0), (2, 0), (4, 0), (5, 0), (3, 0), (3, 1), (6, 0), (6, 1)]

  def path(pid, cam, k):
    p = os.path.join(root, f"cam{cam}", f"{pid:04d}", f"{k + 1:04d}.jpg")
    return p if os.path.exists(p) else None

  def score(pid):
    return sum(path(pid, c, k) is not None for c, k in cols)

  pids = sorted(train + test, key=lambda p: (-score(p), p))[:rows]
  return [(f"id {pid}", [(f"cam{c}" + (" RGB" if c in RGB_CAMERAS else " IR"), path(pid, c, k))
                         for c, k in cols]) for pid in sorted(pids)]
