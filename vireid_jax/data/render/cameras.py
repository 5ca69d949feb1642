"""Cameras: the modality conversion of a rendered canvas (RGB or thermal) per camera."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from vireid_jax.data.render.shot import Nuisance


@dataclasses.dataclass(frozen=True)
class CameraSpec:
  """A camera: its modality, the scene it films and its imaging defects."""
  camera: int
  infrared: bool
  scene: str                     # scene key; cameras sharing a key share a room
  gain: float = 1.0
  cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
  blur: float = 0.5              # Gaussian sigma in pixels
  noise: float = 0.015           # std of additive sensor noise (0..1 units)
  contrast: float = 1.0          # infrared: out = offset + contrast * temperature
  offset: float = 0.0
  row_noise: float = 0.0         # infrared fixed-pattern row noise


def to_visible(canvas: np.ndarray, cam: CameraSpec, nz: Nuisance,
               rng: np.random.Generator) -> np.ndarray:
  """Camera model for an RGB camera: exposure, colour cast, blur, noise -> uint8 (h, w, 3)."""
  rgb = canvas[..., :3] * (cam.gain * nz.light) * (np.array(cam.cast) * np.array(nz.cast))
  rgb = np.clip(rgb, 0.0, 1.0) ** nz.gamma
  rgb = ndimage.gaussian_filter(rgb, sigma=(cam.blur, cam.blur, 0), mode="nearest")
  rgb = rgb + rng.normal(0.0, cam.noise, rgb.shape)
  return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_infrared(canvas: np.ndarray, cam: CameraSpec, nz: Nuisance,
                rng: np.random.Generator) -> np.ndarray:
  """Camera model for a thermal camera: temperature only, low contrast, blur, noise.

  Returns uint8 (h, w). The colours of the canvas are never used.
  """
  ir = (cam.offset + nz.ir_offset) + cam.contrast * nz.ir_gain * canvas[..., 3]
  ir = ndimage.gaussian_filter(ir, sigma=cam.blur, mode="nearest")
  ir = ir + rng.normal(0.0, cam.noise, ir.shape)
  if cam.row_noise:
    ir = ir + rng.normal(0.0, cam.row_noise, (ir.shape[0], 1))
  return np.clip(ir * 255.0 + 0.5, 0, 255).astype(np.uint8)
