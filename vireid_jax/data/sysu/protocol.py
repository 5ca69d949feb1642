"""The SYSU-MM01 test protocol: infrared queries, visible galleries drawn per trial.

Four rows: all-search (visible cameras 1, 2, 4, 5) or indoor-search (1, 2),
single-shot (1 image per person and camera) or multi-shot (10). Queries from
camera 3 ignore the camera-2 gallery (the same room). Two gallery draw rules
(`eval.gallery_rule`, docs/method.md, "Evaluation protocols"):
  * "baseline": AGW's `process_gallery_sysu` (also CAJ, DEEN, ...):
    `random.seed(trial)`, then for each test id (ascending) and each camera
    of the mode whose folder exists, `random.choice` over the sorted file
    list. AGW has no multi-shot; we use the common extension
    `random.sample(files, min(10, len(files)))` from the same random stream.
    Galleries for trial = 0..9 therefore equal the PyTorch baselines' galleries.
  * "official": the SYSU-MM01 release's `rand_perm_cam.mat`: the first 1
    (single) or 10 (multi) entries of row `trial` of the (camera, person)
    permutation, 1-based indexes into the sorted file list.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import scipy.io

from vireid_jax.data.protocol import (IgnoresCamera, ModalityImages, Row, Suite,
                                      draw_from_folders)
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.data.sysu.reader import INDOOR_CAMERAS, RGB_CAMERAS

MODE_CAMERAS = {"all": RGB_CAMERAS, "indoor": INDOOR_CAMERAS}
SHOT_SIZES = {"single": 1, "multi": 10}
RAND_PERM_KEY = "rand_perm_cam"
# Infrared camera 3 films the room of visible camera 2: its queries ignore that camera.
CAMERA_RULE = IgnoresCamera(query_camera=3, gallery_camera=2)

# (path, person id, camera)
GalleryEntry = tuple[str, int, int]


def _check_mode_shot(mode: str, shot: str) -> None:
  if mode not in MODE_CAMERAS:
    raise ValueError(f"Unknown SYSU search mode {mode!r}; use one of {tuple(MODE_CAMERAS)}.")
  if shot not in SHOT_SIZES:
    raise ValueError(f"Unknown SYSU gallery shot {shot!r}; use one of {tuple(SHOT_SIZES)}.")


def draw_gallery_baseline(gallery_files: Mapping[tuple[int, int], Sequence[str]],
                          test_ids: Sequence[int], mode: str, shot: str,
                          trial: int) -> list[GalleryEntry]:
  """AGW's `process_gallery_sysu` draw (see module docstring)."""
  _check_mode_shot(mode, shot)
  folders = [((pid, cam), gallery_files.get((pid, cam), ()))
             for pid in sorted(test_ids) for cam in MODE_CAMERAS[mode]]
  return draw_from_folders(folders, trial, SHOT_SIZES[shot])


class RandPermCam:
  """The official `rand_perm_cam.mat`: a permutation matrix per (camera, person).

  `perm(camera, pid)` is the (trials, N) int matrix of 1-based image indexes.
  """

  def __init__(self, cells: Sequence[Sequence[np.ndarray]], source: str = "<memory>"):
    self.cells = cells
    self.source = source

  def perm(self, camera: int, pid: int) -> np.ndarray:
    if not 1 <= camera <= len(self.cells):
      raise ValueError(f"{self.source}: camera {camera} is outside the {len(self.cells)} "
                       "cameras of rand_perm_cam.")
    per_id = self.cells[camera - 1]
    if not 1 <= pid <= len(per_id):
      raise ValueError(f"{self.source}: person id {pid} is outside the {len(per_id)} person "
                       f"cells of camera {camera} in rand_perm_cam: is this the SYSU-MM01 file?")
    return per_id[pid - 1]


def load_rand_perm_cam(path: str) -> RandPermCam:
  """Reads the official `rand_perm_cam.mat` (6x1 cell of Px1 cells of 10xN matrices)."""
  if not path or not os.path.isfile(path):
    raise FileNotFoundError(
        f"rand_perm_cam file {path!r} not found. It ships with the official SYSU-MM01 "
        "evaluation code (evaluation/data_split/rand_perm_cam.mat); set "
        "--config.eval.rand_perm_cam=/path/to/rand_perm_cam.mat or use "
        "--config.eval.gallery_rule=baseline.")
  try:
    mat = scipy.io.loadmat(path)
  except Exception as e:  # scipy raises several types for a broken file
    raise ValueError(f"Cannot read {path!r} as a MATLAB .mat file ({type(e).__name__}: {e}).") from e
  if RAND_PERM_KEY not in mat:
    keys = sorted(k for k in mat if not k.startswith("__"))
    raise ValueError(f"{path!r} has no variable {RAND_PERM_KEY!r} (it has {keys}).")
  outer = mat[RAND_PERM_KEY]
  if outer.dtype != object:
    raise ValueError(f"{path!r}: {RAND_PERM_KEY} must be a cell array (one cell per camera), "
                     f"got a {outer.dtype} array of shape {outer.shape}.")
  cells = []
  for c, per_cam in enumerate(outer.reshape(-1)):
    if not isinstance(per_cam, np.ndarray) or per_cam.dtype != object:
      raise ValueError(f"{path!r}: {RAND_PERM_KEY}{{{c + 1}}} must be a cell array (one cell "
                       "per person id).")
    cam_cells = []
    for p, m in enumerate(per_cam.reshape(-1)):
      m = np.asarray(m)
      if m.size and (m.ndim != 2 or not np.issubdtype(m.dtype, np.number)):
        raise ValueError(f"{path!r}: {RAND_PERM_KEY}{{{c + 1}}}{{{p + 1}}} must be a numeric "
                         f"trials x N matrix, got {m.dtype} of shape {m.shape}.")
      if m.size and not np.array_equal(m, np.round(m)):
        raise ValueError(f"{path!r}: {RAND_PERM_KEY}{{{c + 1}}}{{{p + 1}}} holds non-integer "
                         "image indexes.")
      cam_cells.append(m.astype(np.int64).reshape(m.shape if m.size else (0, 0)))
    cells.append(cam_cells)
  return RandPermCam(cells, source=path)


def write_rand_perm_cam(path: str, perms: Mapping[tuple[int, int], np.ndarray], *,
                        num_cameras: int = 6, num_ids: int = 333) -> None:
  """Writes `perms[(camera, pid)]` (trials x N, 1-based) in the official cell layout."""
  outer = np.empty((num_cameras, 1), dtype=object)
  for c in range(num_cameras):
    inner = np.empty((num_ids, 1), dtype=object)
    for p in range(num_ids):
      inner[p, 0] = np.zeros((0, 0))
    outer[c, 0] = inner
  for (cam, pid), m in perms.items():
    if not (1 <= cam <= num_cameras and 1 <= pid <= num_ids):
      raise ValueError(f"(camera {cam}, person {pid}) does not fit a {num_cameras}x{num_ids} "
                       "rand_perm_cam; raise num_cameras/num_ids.")
    outer[cam - 1, 0][pid - 1, 0] = np.asarray(m, np.float64)
  scipy.io.savemat(path, {RAND_PERM_KEY: outer})


def make_rand_perm(gallery_files: Mapping[tuple[int, int], Sequence[str]], *,
                   trials: int = 10, seed: int = 0) -> dict[tuple[int, int], np.ndarray]:
  """Random (trials x N) 1-based permutations per (camera, pid): the official file's shape."""
  rng = np.random.default_rng(seed)
  return {(cam, pid): np.stack([rng.permutation(len(files)) + 1 for _ in range(trials)])
          for (pid, cam), files in sorted(gallery_files.items())}


def draw_gallery_official(gallery_files: Mapping[tuple[int, int], Sequence[str]],
                          test_ids: Sequence[int], mode: str, shot: str, trial: int,
                          rand_perm: RandPermCam) -> list[GalleryEntry]:
  """The official rule: first 1 or 10 entries of row `trial` (0-based) of rand_perm_cam."""
  _check_mode_shot(mode, shot)
  out = []
  for pid in sorted(test_ids):
    for cam in MODE_CAMERAS[mode]:
      files = list(gallery_files.get((pid, cam), ()))
      if not files:
        continue
      m = rand_perm.perm(cam, pid)
      where = f"{rand_perm.source}: camera {cam}, person {pid}"
      if m.size == 0:
        raise ValueError(f"{where}: the permutation cell is empty but the folder has "
                         f"{len(files)} images: the file does not match this copy of the dataset.")
      if m.shape[0] <= trial:
        raise ValueError(f"{where}: trial {trial} needs row {trial + 1} but the permutation "
                         f"matrix has {m.shape[0]} rows (shape {m.shape}).")
      picks = m[trial, :min(SHOT_SIZES[shot], m.shape[1])]
      bad = picks[(picks < 1) | (picks > len(files))]
      if bad.size:
        raise ValueError(f"{where}, trial {trial}: image index {int(bad[0])} is outside 1.."
                         f"{len(files)} (the folder has {len(files)} images): the file does not "
                         "match this copy of the dataset.")
      out.extend((files[i - 1], pid, cam) for i in picks)
  return out


# ---------------------------------------------------------------- the suite

def load_draw_source(gallery_rule: str, rand_perm_cam) -> RandPermCam | None:
  """The official rule's permutation file (a path, or one already loaded)."""
  if gallery_rule != "official":
    return None
  if rand_perm_cam is None or rand_perm_cam == "":
    raise ValueError("gallery_rule='official' needs rand_perm_cam=/path/to/rand_perm_cam.mat.")
  if isinstance(rand_perm_cam, RandPermCam):
    return rand_perm_cam
  return load_rand_perm_cam(rand_perm_cam)


def _draw(mode: str, shot: str):
  """Every infrared query, and the visible gallery of (mode, shot) for the trial."""
  def draw(test_set, trial, options):
    if options.gallery_rule == "official":
      entries = draw_gallery_official(test_set.gallery_files, test_set.test_ids, mode, shot,
                                      trial, options.source)
    else:
      entries = draw_gallery_baseline(test_set.gallery_files, test_set.test_ids, mode, shot,
                                      trial)
    return ModalityImages.from_records(test_set.query), ModalityImages.from_rows(entries)
  return draw


def describe(test_set) -> str:
  gallery = sum(len(files) for files in test_set.gallery_files.values())
  return (f"{len(test_set.test_ids)} test ids, {len(test_set.query)} infrared queries, "
          f"{gallery} visible gallery images")


def images_by_modality(test_set) -> dict[int, ModalityImages]:
  """The infrared queries and every visible gallery file (all cameras), dataset order."""
  visible = [(p, pid, cam) for (pid, cam), files in sorted(test_set.gallery_files.items())
             for p in files]
  return {VISIBLE: ModalityImages.from_rows(visible),
          INFRARED: ModalityImages.from_records(test_set.query)}


SUITE = Suite(
    "sysu",
    rows=tuple(Row(f"{mode}_{shot}", INFRARED, VISIBLE, _draw(mode, shot), CAMERA_RULE)
               for mode in MODE_CAMERAS for shot in SHOT_SIZES),
    headline=("all_single", "rank1"), rank_list_row="all_single", describe=describe,
    images_by_modality=images_by_modality, gallery_rules=("baseline", "official"),
    load_draw_source=load_draw_source)
