"""One (person, camera) folder of images: the loop every synthetic layout writer shares."""

from __future__ import annotations

import functools
import os
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from vireid_jax.data.render.cameras import CameraSpec, to_infrared, to_visible
from vireid_jax.data.render.identity import Person
from vireid_jax.data.render.scenes import make_scene
from vireid_jax.data.render.shot import render_scene, sample_nuisance


@functools.lru_cache(maxsize=None)
def scene(key: str, seed: int, h: int, w: int) -> np.ndarray:
  """`make_scene`, made once per process."""
  return make_scene(key, seed, h, w)


def write_shots(folder: str, spec: CameraSpec, person: Person, seed: int, h: int, w: int,
                shots: Iterable[tuple[Sequence[int], str]], quality: int = 90) -> None:
  """Renders one JPEG per (random key, file name) of `shots` into `folder` with camera `spec`.

  Each image is a pure function of its key (its own seeded generator), so
  folders can be written by any worker in any order.
  """
  background = scene(spec.scene, seed, h, w)
  os.makedirs(folder, exist_ok=True)
  for key, name in shots:
    rng = np.random.default_rng(key)
    nz = sample_nuisance(rng, background.shape, h, w)
    canvas = render_scene(person, background, nz, h, w)
    path = os.path.join(folder, name)
    if spec.infrared:
      Image.fromarray(to_infrared(canvas, spec, nz, rng), "L").save(path, quality=quality)
    else:
      Image.fromarray(to_visible(canvas, spec, nz, rng), "RGB").save(path, quality=quality)
