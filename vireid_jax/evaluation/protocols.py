"""The SYSU-MM01 and RegDB test protocols: gallery draws, trials and averaging.

SYSU-MM01 (docs/method.md, "Evaluation protocols"): infrared queries (cams 3, 6) against a visible
gallery drawn per trial, in all-search (cams 1, 2, 4, 5) or indoor-search
(cams 1, 2), single-shot (1 image per person and camera) or multi-shot (10).
Two gallery draw rules are offered:
  * "baseline": AGW's `process_gallery_sysu` (also CAJ, DEEN, ...):
    `random.seed(trial)`, then for each test id (ascending) and each camera
    of the mode whose folder exists, `random.choice` over the sorted file
    list. AGW has no multi-shot; we use the common extension
    `random.sample(files, min(10, len(files)))` from the same random stream.
    We draw from `random.Random(trial)`, which yields exactly the numbers of
    the module functions after `random.seed(trial)`, without touching the
    global random state. Galleries for trial = 0..9 therefore equal the
    PyTorch baselines' galleries.
  * "official": the SYSU-MM01 release's `rand_perm_cam.mat`: the first 1
    (single) or 10 (multi) entries of row `trial` of the (camera, person)
    permutation, 1-based indexes into the sorted file list.

Features are extracted once: all queries once, and each distinct gallery image
once over every trial, mode and shot. Results are percentages, averaged over
trials, with their (population, ddof=0) standard deviation.
"""

from __future__ import annotations

import os
import random
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.io

from vireid_jax.data import sysu
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.evaluation import metrics
from vireid_jax.evaluation import rerank as rerank_lib
from vireid_jax.evaluation.metrics import METRIC_KEYS

MODE_CAMERAS = {"all": sysu.RGB_CAMERAS, "indoor": sysu.INDOOR_CAMERAS}
SHOT_SIZES = {"single": 1, "multi": 10}
RAND_PERM_KEY = "rand_perm_cam"

# (path, person id, camera)
GalleryEntry = tuple[str, int, int]
Extractor = Callable[[Sequence[str], int], np.ndarray]


# ---------------------------------------------------------------- gallery draws

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
  rng = random.Random(trial)
  out = []
  for pid in sorted(test_ids):
    for cam in MODE_CAMERAS[mode]:
      files = list(gallery_files.get((pid, cam), ()))
      if not files:
        continue
      if shot == "single":
        out.append((rng.choice(files), pid, cam))
      else:
        out.extend((f, pid, cam) for f in rng.sample(files, min(SHOT_SIZES[shot], len(files))))
  return out


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


# ---------------------------------------------------------------- evaluation

def _extract(extract: Extractor, paths: Sequence[str], modality: int) -> np.ndarray:
  feats = np.asarray(extract(list(paths), modality), np.float32)
  if feats.ndim != 2 or feats.shape[0] != len(paths):
    raise ValueError(f"extract returned shape {feats.shape} for {len(paths)} images; "
                     "expected (num_images, feature_dim).")
  return feats


def _distances(q: np.ndarray, g: np.ndarray, rerank: bool) -> np.ndarray:
  if rerank:
    return np.asarray(rerank_lib.rerank_distances(q, g))
  return -(q @ g.T)


def _percent(result: dict) -> dict:
  cmc = result["cmc"]
  return {"rank1": 100.0 * float(cmc[0]), "rank10": 100.0 * float(cmc[9]),
          "rank20": 100.0 * float(cmc[19]), "mAP": 100.0 * result["mAP"],
          "mINP": 100.0 * result["mINP"]}


def summarize(per_trial: Sequence[dict]) -> dict:
  """Mean and std (ddof=0) over trials of the percentage metrics."""
  out = {k: float(np.mean([t[k] for t in per_trial])) for k in METRIC_KEYS}
  out["std"] = {k: float(np.std([t[k] for t in per_trial])) for k in METRIC_KEYS}
  out["trials"] = len(per_trial)
  out["per_trial"] = list(per_trial)
  return out


def _check_max_rank(max_rank: int) -> None:
  if int(max_rank) < 20:
    raise ValueError(f"max_rank={max_rank}: the report needs Rank-20, use max_rank >= 20.")


def evaluate_sysu_protocols(test_set, extract: Extractor, *,
                            modes: Sequence[str] = ("all", "indoor"),
                            shots: Sequence[str] = ("single", "multi"), trials: int = 10,
                            gallery_rule: str = "baseline",
                            rand_perm_cam: str | RandPermCam | None = None,
                            rerank: bool = False, max_rank: int = 20) -> dict:
  """SYSU-MM01 results per protocol: {"all_single": {...}, "all_multi": ..., ...}.

  Args:
    test_set: has `query` (ImageRecords), `gallery_files` ((pid, cam) -> sorted
      paths) and `test_ids`, as `vireid_jax.data.sysu.load_test` returns.
    extract: (paths, modality) -> (N, D) float32 L2-normalised features.
    trials: trials 0..trials-1 (rows of rand_perm_cam for the official rule).
    gallery_rule: "baseline" or "official" (needs `rand_perm_cam`, a path or a
      loaded `RandPermCam`).
  """
  _check_max_rank(max_rank)
  for mode in modes:
    for shot in shots:
      _check_mode_shot(mode, shot)
  if int(trials) < 1:
    raise ValueError(f"trials={trials}: need at least one trial.")
  if gallery_rule == "baseline":
    def draw(mode, shot, trial):
      return draw_gallery_baseline(test_set.gallery_files, test_set.test_ids, mode, shot, trial)
  elif gallery_rule == "official":
    if rand_perm_cam is None:
      raise ValueError("gallery_rule='official' needs rand_perm_cam=/path/to/rand_perm_cam.mat.")
    perm = rand_perm_cam if isinstance(rand_perm_cam, RandPermCam) else load_rand_perm_cam(rand_perm_cam)

    def draw(mode, shot, trial):
      return draw_gallery_official(test_set.gallery_files, test_set.test_ids, mode, shot, trial, perm)
  else:
    raise ValueError(f"gallery_rule={gallery_rule!r}: use 'baseline' or 'official'.")

  query = tuple(test_set.query)
  if not query:
    raise ValueError("The SYSU-MM01 test set has no query images.")
  draws = {(m, s, t): draw(m, s, t) for m in modes for s in shots for t in range(int(trials))}
  column = {}
  for entries in draws.values():
    for path, _, _ in entries:
      column.setdefault(path, len(column))
  if not column:
    raise ValueError("Every SYSU-MM01 gallery draw is empty: no visible test images found.")

  q_feat = _extract(extract, [r.path for r in query], INFRARED)
  g_feat = _extract(extract, list(column), VISIBLE)
  q_pids = np.array([r.label for r in query])
  q_cams = np.array([r.camera for r in query])
  sim = None if rerank else q_feat @ g_feat.T        # every gallery image once

  results = {}
  for mode in modes:
    for shot in shots:
      per_trial = []
      for trial in range(int(trials)):
        entries = draws[(mode, shot, trial)]
        idx = np.array([column[p] for p, _, _ in entries])
        if rerank:
          dist = _distances(q_feat, g_feat[idx], True)
        else:
          dist = sim.take(idx, axis=1)
          np.negative(dist, out=dist)
        res = metrics.evaluate_sysu(dist, q_pids, np.array([e[1] for e in entries]), q_cams,
                                    np.array([e[2] for e in entries]), max_rank)
        per_trial.append(_percent(res))
      results[f"{mode}_{shot}"] = summarize(per_trial)
  return results


def evaluate_regdb_protocols(test_set, extract: Extractor, *, rerank: bool = False,
                             max_rank: int = 20) -> dict:
  """RegDB results of one trial split, both directions.

  Returns {"visible_to_thermal": {...}, "thermal_to_visible": {...}} with the
  same fields as the SYSU protocols (trials=1, std 0): each RegDB trial has
  its own trained model, so averaging over trials happens across runs.
  """
  _check_max_rank(max_rank)
  vis, thermal = tuple(test_set.visible), tuple(test_set.thermal)
  if not vis or not thermal:
    raise ValueError(f"The RegDB test split has {len(vis)} visible and {len(thermal)} thermal "
                     "images; both must be non-empty.")
  v_feat = _extract(extract, [r.path for r in vis], VISIBLE)
  t_feat = _extract(extract, [r.path for r in thermal], INFRARED)
  v_pids = np.array([r.label for r in vis])
  t_pids = np.array([r.label for r in thermal])
  v2t = metrics.evaluate_regdb(_distances(v_feat, t_feat, rerank), v_pids, t_pids, max_rank)
  t2v = metrics.evaluate_regdb(_distances(t_feat, v_feat, rerank), t_pids, v_pids, max_rank)
  return {"visible_to_thermal": summarize([_percent(v2t)]),
          "thermal_to_visible": summarize([_percent(t2v)])}
