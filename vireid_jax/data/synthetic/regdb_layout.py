"""Writes the RegDB layout: Visible/<id>/*.bmp, Thermal/<id>/*.bmp and the idx/ split files."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image

from vireid_jax.data.synthetic.cameras import REGDB_CAMERAS, to_infrared, to_visible
from vireid_jax.data.synthetic.identity import sample_person
from vireid_jax.data.synthetic.scenes import make_scene
from vireid_jax.data.synthetic.shot import render_scene, sample_nuisance


def regdb_file_name(gender: str, view: str, modality: str, frame: int, pid: int) -> str:
  """RegDB naming, e.g. male_front_v_00007_1.bmp (modality v or t; last field = person id)."""
  return f"{gender}_{view}_{modality}_{frame:05d}_{pid}.bmp"


def write(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int) -> None:
  """RegDB: one co-registered visible/thermal camera pair, so each shot exists in both."""
  vis_cam, ir_cam = REGDB_CAMERAS[1], REGDB_CAMERAS[2]
  scene = make_scene("regdb", seed, h, w)
  files = {}   # pid -> (visible relpaths, thermal relpaths)
  frame = 0
  for pid in range(1, num_ids + 1):
    person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
    view = str(np.random.default_rng([seed, 7, pid]).choice(["front", "back"]))
    n = int(np.random.default_rng([seed, 4, pid]).integers(lo, hi + 1))
    vis, th = [], []
    for sub in ("Visible", "Thermal"):
      os.makedirs(os.path.join(out, sub, str(pid)), exist_ok=True)
    for k in range(n):
      frame += 1
      rng = np.random.default_rng([seed, 6, pid, 0, k])
      nz = sample_nuisance(rng, scene.shape, h, w, views=(view,), view_probs=(1.0,))
      nz = dataclasses.replace(nz, pose=dataclasses.replace(nz.pose, facing=1))
      canvas = render_scene(person, scene, nz, h, w)
      rel_v = f"Visible/{pid}/{regdb_file_name(person.gender, view, 'v', frame, pid)}"
      rel_t = f"Thermal/{pid}/{regdb_file_name(person.gender, view, 't', frame, pid)}"
      Image.fromarray(to_visible(canvas, vis_cam, nz, rng), "RGB").save(os.path.join(out, rel_v))
      Image.fromarray(to_infrared(canvas, ir_cam, nz, rng), "L").save(os.path.join(out, rel_t))
      vis.append(rel_v)
      th.append(rel_t)
    files[pid] = (vis, th)
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
