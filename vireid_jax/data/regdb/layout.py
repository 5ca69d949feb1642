"""The synthetic RegDB layout: Visible/<id>/*.bmp, Thermal/<id>/*.bmp and the idx/ split files."""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
from PIL import Image

from vireid_jax.data.render.cameras import CameraSpec, to_infrared, to_visible
from vireid_jax.data.render.identity import sample_person
from vireid_jax.data.render.scenes import make_scene
from vireid_jax.data.render.shot import render_scene, sample_nuisance
from vireid_jax.data.render.workers import run_items

# One co-registered camera pair filming one scene.
CAMERAS = {
    1: CameraSpec(1, False, "regdb", gain=0.8, cast=(1.0, 0.98, 0.92), blur=0.8, noise=0.02),
    2: CameraSpec(2, True, "regdb", blur=1.0, noise=0.025, contrast=0.8, offset=0.06),
}


def regdb_file_name(gender: str, view: str, modality: str, frame: int, pid: int) -> str:
  """RegDB naming, e.g. male_front_v_00007_1.bmp (modality v or t; last field = person id)."""
  return f"{gender}_{view}_{modality}_{frame:05d}_{pid}.bmp"


def write(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int, *,
          workers: int = 1) -> None:
  """RegDB: one co-registered visible/thermal camera pair, so each shot exists in both."""
  counts = {pid: int(np.random.default_rng([seed, 4, pid]).integers(lo, hi + 1))
            for pid in range(1, num_ids + 1)}
  first_frame, frame = {}, 0         # frames are numbered across people, in id order
  for pid in sorted(counts):
    first_frame[pid] = frame + 1
    frame += counts[pid]
  for pid in counts:
    for sub in ("Visible", "Thermal"):
      os.makedirs(os.path.join(out, sub, str(pid)), exist_ok=True)
  items = [(out, seed, h, w, pid, counts[pid], first_frame[pid]) for pid in sorted(counts)]
  run_items(_write_person, items, workers)
  files = {pid: _relative_paths(seed, pid, counts[pid], first_frame[pid]) for pid in counts}
  os.makedirs(os.path.join(out, "idx"), exist_ok=True)
  pids = sorted(files)
  for trial in range(1, 11):
    perm = np.random.default_rng([seed, 5, trial]).permutation(pids)
    train = sorted(int(v) for v in perm[:len(pids) // 2])
    test = sorted(int(v) for v in perm[len(pids) // 2:])
    # Train labels: relabelled 0..n_train-1 in id order; test labels: the person's
    # 0-based index (folder id - 1). Only label equality matters for evaluation.
    for split, ids, label_of in (("train", train, {p: i for i, p in enumerate(train)}),
                                 ("test", test, {p: p - 1 for p in test})):
      for m, mod in ((0, "visible"), (1, "thermal")):
        with open(os.path.join(out, "idx", f"{split}_{mod}_{trial}.txt"), "w") as f:
          for pid in ids:
            for rel in files[pid][m]:
              f.write(f"{rel} {label_of[pid]}\n")


def _person(seed: int, pid: int):
  person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
  view = str(np.random.default_rng([seed, 7, pid]).choice(["front", "back"]))
  return person, view


def _relative_paths(seed: int, pid: int, n: int, first_frame: int) -> tuple[list[str], list[str]]:
  person, view = _person(seed, pid)
  frames = range(first_frame, first_frame + n)
  return ([f"Visible/{pid}/{regdb_file_name(person.gender, view, 'v', f, pid)}" for f in frames],
          [f"Thermal/{pid}/{regdb_file_name(person.gender, view, 't', f, pid)}" for f in frames])


@functools.lru_cache(maxsize=None)
def _scene(seed: int, h: int, w: int) -> np.ndarray:
  return make_scene(CAMERAS[1].scene, seed, h, w)


def _write_person(item) -> None:
  """One person's visible/thermal pairs: a pure function of the item."""
  out, seed, h, w, pid, n, first_frame = item
  vis_cam, ir_cam = CAMERAS[1], CAMERAS[2]
  scene = _scene(seed, h, w)
  person, view = _person(seed, pid)
  for k, (rel_v, rel_t) in enumerate(zip(*_relative_paths(seed, pid, n, first_frame))):
    rng = np.random.default_rng([seed, 6, pid, 0, k])
    nz = sample_nuisance(rng, scene.shape, h, w, views=(view,), view_probs=(1.0,))
    nz = dataclasses.replace(nz, pose=dataclasses.replace(nz.pose, facing=1))
    canvas = render_scene(person, scene, nz, h, w)
    Image.fromarray(to_visible(canvas, vis_cam, nz, rng), "RGB").save(os.path.join(out, rel_v))
    Image.fromarray(to_infrared(canvas, ir_cam, nz, rng), "L").save(os.path.join(out, rel_t))


def sheet_cells(root: str, rows: int):
  """The sample sheet: four visible, then the same four thermal shots of the first identities."""
  out = []
  pids = sorted(int(d) for d in os.listdir(os.path.join(root, "Visible")))[:rows]
  for pid in pids:
    vis = sorted(os.listdir(os.path.join(root, "Visible", str(pid))))
    th = sorted(os.listdir(os.path.join(root, "Thermal", str(pid))))
    picks = [0, len(vis) // 3, 2 * len(vis) // 3, len(vis) - 1]
    out.append((f"id {pid}", [("visible", os.path.join(root, "Visible", str(pid), vis[i]))
                              for i in picks] +
                [("thermal", os.path.join(root, "Thermal", str(pid), th[i])) for i in picks]))
  return out
