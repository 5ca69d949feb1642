"""The synthetic LLCM layout: idx/ lists, train_{vis,nir}/ and test_{vis,nir}/camK/PPPP/NNNN.jpg.

Nine cameras, each filming one place in both modalities (visible or
near-infrared imaging as the light allows), as in LLCM: a visible and an infrared
image of one camera share their background, which the protocol's
same-camera rule keeps out of the ranking. The visible cameras are low-light:
dark, noisy and colour-cast. The near-infrared side has no camera 3.
"""

from __future__ import annotations

import os

import numpy as np

from vireid_jax.data.llcm.reader import CAMERAS as MODALITY_CAMERAS
from vireid_jax.data.llcm.reader import TEST_FOLDERS, TEST_ID_LIST, TRAIN_LISTS
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.data.render.cameras import CameraSpec
from vireid_jax.data.render.folder import write_shots
from vireid_jax.data.render.identity import sample_person
from vireid_jax.data.render.workers import run_items

TRAIN_FOLDERS = {VISIBLE: "train_vis", INFRARED: "train_nir"}
# Share of the identities in the test set (LLCM: 351 of 1,064).
TEST_SHARE = 0.33
# Cameras 1-4 film indoors, 5-9 outdoors; (gain, colour cast) of each visible camera at night.
_LIGHT = {1: (0.45, (1.15, 0.95, 0.70)), 2: (0.55, (0.90, 1.00, 1.15)), 3: (0.40, (1.10, 1.00, 0.80)),
          4: (0.60, (1.00, 1.00, 0.90)), 5: (0.35, (1.25, 0.95, 0.60)), 6: (0.50, (0.95, 1.00, 1.10)),
          7: (0.40, (1.20, 1.00, 0.70)), 8: (0.55, (1.00, 0.95, 1.05)), 9: (0.45, (1.10, 0.90, 0.75))}


def _scene_key(cam: int) -> str:
  return f"{'indoor' if cam <= 4 else 'outdoor'}_llcm{cam}"


CAMERAS = {
    VISIBLE: {c: CameraSpec(c, False, _scene_key(c), gain=g, cast=cast, blur=0.7, noise=0.035)
              for c, (g, cast) in _LIGHT.items()},
    INFRARED: {c: CameraSpec(c, True, _scene_key(c), blur=0.9, noise=0.03,
                             contrast=0.8, offset=0.06, row_noise=0.01 * (c % 2))
               for c in MODALITY_CAMERAS[INFRARED]},
}


def split(num_ids: int, test_ids: int | None, val_ids: int | None) -> dict:
  """The checked split of `write`: test identities (about a third unless given)."""
  if val_ids is not None:
    raise ValueError("val_ids: the llcm layout has no validation list (idx/ lists train and "
                     "test only).")
  n_test = max(1, int(round(TEST_SHARE * num_ids))) if test_ids is None else int(test_ids)
  if not 1 <= n_test <= num_ids - 2:
    raise ValueError(f"test_ids={n_test} of num_ids={num_ids}: the test set needs at least one "
                     "identity and training at least two.")
  return {"test_ids": n_test}


def plan(num_ids: int, seed: int, lo: int, hi: int, test_ids: int):
  """Person ids (with gaps), the split, and the images of each (modality, person, camera).

  Every identity is seen by some camera of each modality; every test camera
  folder holds some test identity (the reader refuses an empty one).
  """
  rng = np.random.default_rng([seed, 13])
  pool = np.arange(1, num_ids + max(2, num_ids // 8) + 1)
  pids = np.sort(rng.choice(pool, num_ids, replace=False))
  perm = rng.permutation(pids)
  test = sorted(int(v) for v in perm[:test_ids])
  train = sorted(int(v) for v in perm[test_ids:])
  counts = {}   # (modality, pid, cam) -> number of images
  for pid in (int(v) for v in pids):
    prng = np.random.default_rng([seed, 14, pid])
    for modality, cams in MODALITY_CAMERAS.items():
      present = [c for c in cams if prng.random() < 0.55] or [int(prng.choice(cams))]
      for cam in present:
        counts[(modality, pid, cam)] = int(prng.integers(lo, hi + 1))
  for modality, cams in MODALITY_CAMERAS.items():
    for cam in cams:
      if not any((modality, pid, cam) in counts for pid in test):
        pid = test[cam % len(test)]
        counts[(modality, pid, cam)] = lo
  return train, test, counts


def write(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int, *,
          test_ids: int, workers: int = 1) -> None:
  train, test, counts = plan(num_ids, seed, lo, hi, test_ids)
  label = {pid: i for i, pid in enumerate(train)}
  items, listed = [], {VISIBLE: [], INFRARED: []}
  for (modality, pid, cam), n in sorted(counts.items()):
    folders = TRAIN_FOLDERS if pid in label else TEST_FOLDERS
    rel = f"{folders[modality]}/cam{cam}/{pid:04d}"
    items.append((out, seed, h, w, rel, modality, pid, cam, n))
    if pid in label:
      listed[modality].extend(f"{rel}/{k + 1:04d}.jpg {label[pid]}" for k in range(n))
  os.makedirs(os.path.join(out, "idx"), exist_ok=True)
  for modality, name in zip((VISIBLE, INFRARED), TRAIN_LISTS):
    with open(os.path.join(out, name), "w") as f:
      f.write("".join(line + "\n" for line in listed[modality]))
  with open(os.path.join(out, TEST_ID_LIST), "w") as f:
    f.write(",".join(str(i) for i in test))
  for modality, cams in MODALITY_CAMERAS.items():
    for cam in cams:
      os.makedirs(os.path.join(out, TEST_FOLDERS[modality], f"cam{cam}"), exist_ok=True)
  run_items(_write_folder, items, workers)


def _write_folder(item) -> None:
  """The n images of one (modality, person, camera) folder: a pure function of the item."""
  out, seed, h, w, rel, modality, pid, cam, n = item
  person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
  write_shots(os.path.join(out, rel), CAMERAS[modality][cam], person, seed, h, w,
              (([seed, 15, pid, cam, modality, k], f"{k + 1:04d}.jpg") for k in range(n)))


def sheet_cells(root: str, rows: int):
  """The sample sheet: test identities, their first four visible then infrared shots."""
  with open(os.path.join(root, TEST_ID_LIST)) as f:
    test = sorted(int(t) for t in f.read().split(",") if t.strip())
  out = []
  for pid in test[:rows]:
    row = []
    for modality, name in ((VISIBLE, "VIS"), (INFRARED, "NIR")):
      shots = [os.path.join(root, TEST_FOLDERS[modality], f"cam{c}", f"{pid:04d}", "0001.jpg")
               for c in MODALITY_CAMERAS[modality]]
      shots = [p for p in shots if os.path.exists(p)][:4]
      row.extend((name, p) for p in shots + [None] * (4 - len(shots)))
    out.append((f"id {pid}", row))
  return out
