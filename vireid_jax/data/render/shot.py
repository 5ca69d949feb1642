"""One shot: the nuisance of an image (pose, crop, light) and the rendered canvas."""

from __future__ import annotations

import dataclasses

import numpy as np

from vireid_jax.data.render.body import Pose, draw_person, sample_pose
from vireid_jax.data.render.canvas import Canvas
from vireid_jax.data.render.identity import Person
from vireid_jax.data.render.scenes import add_clutter, add_occluder


@dataclasses.dataclass(frozen=True)
class Nuisance:
  """Everything about one shot that is not the identity."""
  pose: Pose
  crop: tuple[int, int]      # top-left of the background window in the scene
  occlude: bool
  clutter_seed: int
  light: float               # extra visible exposure factor
  cast: tuple[float, float, float]
  gamma: float
  ir_gain: float
  ir_offset: float


def sample_nuisance(rng: np.random.Generator, scene_shape, h: int, w: int,
                    views=("front", "back", "side"), view_probs=(0.4, 0.35, 0.25)) -> Nuisance:
  return Nuisance(
      pose=sample_pose(rng, h, w, views, view_probs),
      crop=(int(rng.integers(0, scene_shape[0] - h + 1)),
            int(rng.integers(0, scene_shape[1] - w + 1))),
      occlude=bool(rng.random() < 0.22), clutter_seed=int(rng.integers(2**31)),
      light=float(np.exp(rng.normal(0, 0.12))),
      cast=tuple(float(c) for c in np.exp(rng.normal(0, 0.03, 3))),
      gamma=float(rng.uniform(0.85, 1.15)), ir_gain=float(rng.uniform(0.9, 1.06)),
      ir_offset=float(rng.normal(0, 0.025)))


def render_scene(person: Person, scene: np.ndarray, nz: Nuisance, h: int, w: int) -> np.ndarray:
  """Paints the person over a background crop; returns (h, w, 4) RGB + temperature."""
  oy, ox = nz.crop
  cv = Canvas(np.array(scene[oy:oy + h, ox:ox + w], np.float32))
  crng = np.random.default_rng(nz.clutter_seed)
  add_clutter(cv, crng, h, w)
  draw_person(cv, person, nz.pose)
  if nz.occlude:
    add_occluder(cv, crng, h, w)
  return cv.img
