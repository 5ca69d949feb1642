"""Cameras: the modality conversion of a rendered canvas (RGB or thermal) per camera."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from vireid_jax.data.synthetic.shot import Nuisance


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


SYSU_CAMERAS = {
    1: CameraSpec(1, False, "indoor_a", gain=1.0, cast=(1.08, 1.0, 0.86), blur=0.5, noise=0.012),
    2: CameraSpec(2, False, "indoor_b", gain=0.95, cast=(0.90, 1.0, 1.12), blur=0.6, noise=0.015),
    3: CameraSpec(3, True, "indoor_b", blur=0.8, noise=0.022, contrast=0.85, offset=0.05),
    4: CameraSpec(4, False, "outdoor_a", gain=1.12, cast=(1.03, 1.0, 0.94), blur=0.45, noise=0.01),
    5: CameraSpec(5, False, "outdoor_b", gain=0.82, cast=(0.90, 0.97, 1.10), blur=0.6, noise=0.02),
    6: CameraSpec(6, True, "outdoor_c", blur=1.0, noise=0.028, contrast=0.75, offset=0.08,
                  row_noise=0.015),
}
REGDB_CAMERAS = {
    1: CameraSpec(1, False, "regdb", gain=0.8, cast=(1.0, 0.98, 0.92), blur=0.8, noise=0.02),
    2: CameraSpec(2, True, "regdb", blur=1.0, noise=0.025, contrast=0.8, offset=0.06),
}


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
