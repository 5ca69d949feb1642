"""Appearance vocabularies of the synthetic people and scenes.

Colours are sRGB in 0..1; "ir" values are apparent temperatures in 0..1
(0 = cold sky, 1 = hottest). Palettes are small so that several identities
share a colour: colour alone must not identify a person.
"""

from __future__ import annotations

import numpy as np

TOP_COLORS = np.array([
    (0.78, 0.12, 0.14), (0.45, 0.08, 0.12), (0.95, 0.52, 0.12), (0.95, 0.84, 0.22),
    (0.18, 0.55, 0.25), (0.42, 0.45, 0.20), (0.10, 0.50, 0.52), (0.52, 0.72, 0.92),
    (0.16, 0.32, 0.78), (0.10, 0.13, 0.34), (0.45, 0.22, 0.60), (0.94, 0.56, 0.70),
    (0.92, 0.92, 0.90), (0.55, 0.55, 0.56), (0.10, 0.10, 0.11), (0.45, 0.30, 0.18),
    (0.84, 0.77, 0.60)], np.float32)
BOTTOM_COLORS = np.array([
    (0.22, 0.30, 0.50), (0.12, 0.15, 0.27), (0.46, 0.56, 0.72), (0.09, 0.09, 0.10),
    (0.28, 0.28, 0.30), (0.50, 0.50, 0.52), (0.70, 0.63, 0.45), (0.88, 0.88, 0.86),
    (0.38, 0.26, 0.16), (0.35, 0.38, 0.22), (0.60, 0.12, 0.15), (0.12, 0.14, 0.30)],
    np.float32)
SKIN_COLORS = np.array([
    (0.96, 0.80, 0.69), (0.90, 0.72, 0.58), (0.80, 0.60, 0.45), (0.62, 0.44, 0.30),
    (0.45, 0.30, 0.20)], np.float32)
HAIR_COLORS = np.array([
    (0.06, 0.05, 0.05), (0.20, 0.13, 0.08), (0.38, 0.25, 0.14), (0.80, 0.68, 0.42),
    (0.62, 0.62, 0.62), (0.55, 0.20, 0.10)], np.float32)
GEAR_COLORS = np.array([
    (0.08, 0.08, 0.09), (0.12, 0.15, 0.32), (0.45, 0.46, 0.48), (0.72, 0.12, 0.14),
    (0.66, 0.58, 0.40), (0.40, 0.26, 0.15), (0.90, 0.55, 0.68), (0.20, 0.45, 0.25),
    (0.90, 0.90, 0.88), (0.95, 0.60, 0.10)], np.float32)
# Material class -> apparent temperature; drawn independently of the colour.
TOP_MATERIALS = {"thin": 0.70, "cotton": 0.62, "synthetic": 0.55, "knit": 0.49, "coat": 0.40}
TROUSER_MATERIALS = {"cotton": 0.56, "denim": 0.48, "thick": 0.40}
SKIN_IR = 0.88
PATTERNS = ("solid", "hstripes", "vstripes", "diagonal", "checks", "dots", "block", "emblem")
PATTERN_PROBS = (0.12, 0.18, 0.12, 0.13, 0.13, 0.12, 0.11, 0.09)


def pick_color(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.04):
  c = palette[rng.integers(len(palette))] + rng.normal(0.0, jitter, 3)
  return tuple(float(v) for v in np.clip(c, 0.02, 0.98))


def luma(rgb) -> float:
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
