"""Scenes: one wide background per scene key (both modalities from the same
geometry), from which every image crops a random window; clutter and occluders.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from vireid_jax.data.render.canvas import Canvas
from vireid_jax.data.render.identity import Paint
from vireid_jax.data.render.palettes import (BOTTOM_COLORS, GEAR_COLORS, SKIN_COLORS,
                                                TOP_COLORS, pick_color)


def fill_rect(img, x0, y0, x1, y1, value):
  h, w = img.shape[:2]
  xa, xb = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
  ya, yb = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
  if xa < xb and ya < yb:
    img[ya:yb, xa:xb] = value


def fill_disc(img, cx, cy, rx, ry, value):
  h, w = img.shape[:2]
  ys = np.arange(h, dtype=np.float32)[:, None]
  xs = np.arange(w, dtype=np.float32)[None, :]
  mask = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
  img[mask] = value


def pixel(rgb, ir):
  return np.array(tuple(rgb) + (ir,), np.float32)


def make_scene(key: str, seed: int, h: int, w: int) -> np.ndarray:
  """Returns a (h*5/4, 3*w, 4) float32 background: RGB + temperature.

  A key starting with "indoor" is a room; any other key a street. The key seeds the scene.
  """
  rng = np.random.default_rng([seed, 2, sum(ord(c) * 31 ** i for i, c in enumerate(key)) % 2**31])
  hs, ws = h + h // 4, 3 * w
  img = np.zeros((hs, ws, 4), np.float32)
  u = rng.uniform
  if key.startswith("indoor"):
    floor_y = hs * u(0.6, 0.72)
    wall = pixel(pick_color(rng, np.array([(0.86, 0.80, 0.68), (0.90, 0.90, 0.88), (0.72, 0.74, 0.76),
                                    (0.70, 0.80, 0.70), (0.70, 0.78, 0.86)], np.float32), 0.02),
              u(0.22, 0.30))
    floor = pixel(pick_color(rng, np.array([(0.50, 0.50, 0.50), (0.55, 0.40, 0.26), (0.32, 0.32, 0.34),
                                     (0.62, 0.38, 0.30)], np.float32), 0.02), u(0.18, 0.26))
    img[:] = wall
    img[int(floor_y):] = floor
    # Receding floor tiles.
    y, step = floor_y + 3, 3.0
    while y < hs:
      fill_rect(img, 0, y, ws, y + 1, floor * np.array([0.85, 0.85, 0.85, 0.97], np.float32))
      step *= 1.5
      y += step
    fill_rect(img, 0, floor_y - 2, ws, floor_y, wall * np.array([0.6, 0.6, 0.6, 0.95], np.float32))
    for _ in range(rng.integers(4, 8)):
      kind = rng.choice(["door", "window", "pillar", "poster", "radiator", "lamp"])
      x = u(0, ws)
      if kind == "door":
        dw = u(0.3, 0.5) * w
        fill_rect(img, x, floor_y - u(0.45, 0.55) * hs, x + dw, floor_y,
              pixel(pick_color(rng, np.array([(0.45, 0.30, 0.18), (0.55, 0.55, 0.58), (0.3, 0.35, 0.45)],
                                      np.float32)), wall[3] - 0.03))
      elif kind == "window":
        wy = u(0.05, 0.2) * hs
        fill_rect(img, x, wy, x + u(0.3, 0.6) * w, wy + u(0.18, 0.3) * hs, pixel((0.93, 0.96, 1.0), 0.12))
      elif kind == "pillar":
        fill_rect(img, x, 0, x + u(0.15, 0.3) * w, floor_y,
              wall * np.array([0.9, 0.9, 0.9, 1.05], np.float32))
      elif kind == "poster":
        py = u(0.15, 0.35) * hs
        fill_rect(img, x, py, x + u(0.15, 0.3) * w, py + u(0.1, 0.18) * hs,
              pixel(pick_color(rng, TOP_COLORS), wall[3]))
      elif kind == "radiator":
        fill_rect(img, x, floor_y - 0.12 * hs, x + u(0.3, 0.5) * w, floor_y - 0.03 * hs,
              pixel((0.85, 0.85, 0.83), u(0.6, 0.7)))
      else:
        fill_disc(img, x, u(0.03, 0.12) * hs, 0.08 * w, 0.03 * hs, pixel((1.0, 0.97, 0.85), 0.8))
  else:
    sky_y = hs * u(0.12, 0.28)
    ground_y = hs * u(0.55, 0.68)
    img[:] = pixel((0.72, 0.82, 0.93) if rng.random() < 0.6 else (0.78, 0.78, 0.8), 0.08)
    img[int(ground_y):] = pixel(pick_color(rng, np.array([(0.55, 0.55, 0.53), (0.32, 0.32, 0.34),
                                                   (0.62, 0.55, 0.45)], np.float32), 0.02),
                             u(0.30, 0.38))
    x = -u(0, 0.5) * w
    while x < ws:      # buildings with window grids
      bw = u(0.5, 1.2) * w
      by = u(0.0, 1.0) * sky_y
      bcol = pixel(pick_color(rng, np.array([(0.62, 0.62, 0.62), (0.80, 0.74, 0.62), (0.60, 0.36, 0.28),
                                      (0.88, 0.88, 0.86)], np.float32), 0.03), u(0.30, 0.38))
      fill_rect(img, x, by, x + bw, ground_y, bcol)
      win = pixel((0.25, 0.30, 0.38), 0.26 if rng.random() < 0.7 else 0.45)
      for wy in np.arange(by + 4, ground_y - 8, u(9, 13)):
        for wx in np.arange(x + 3, x + bw - 6, u(8, 12)):
          fill_rect(img, wx, wy, wx + 4, wy + 5, win)
      x += bw + u(0, 0.3) * w
    for _ in range(rng.integers(1, 4)):   # trees
      tx = u(0, ws)
      fill_rect(img, tx - 2, ground_y - 0.25 * hs, tx + 2, ground_y, pixel((0.35, 0.24, 0.14), 0.28))
      fill_disc(img, tx, ground_y - 0.3 * hs, u(0.25, 0.45) * w, u(0.12, 0.18) * hs,
            pixel(pick_color(rng, np.array([(0.2, 0.45, 0.2), (0.3, 0.5, 0.22)], np.float32)), 0.2))
    # Kerb, paving joints and grass strip.
    fill_rect(img, 0, ground_y, ws, ground_y + 2, pixel((0.75, 0.75, 0.73), 0.33))
    if rng.random() < 0.5:
      fill_rect(img, 0, ground_y + 2, ws, ground_y + 0.08 * hs, pixel((0.3, 0.55, 0.25), 0.25))
    y, step = ground_y + 6, 4.0
    while y < hs:
      fill_rect(img, 0, y, ws, y + 1,
            img[min(int(y), hs - 1), 0] * np.array([0.85, 0.85, 0.85, 0.97], np.float32))
      step *= 1.45
      y += step
    if rng.random() < 0.5:   # a parked car: cool body, warm bonnet
      cxr = u(0.2, 0.8) * ws
      fill_rect(img, cxr - 0.6 * w, ground_y - 0.18 * hs, cxr + 0.6 * w, ground_y + 0.04 * hs,
            pixel(pick_color(rng, GEAR_COLORS), 0.3))
      fill_rect(img, cxr + 0.2 * w, ground_y - 0.12 * hs, cxr + 0.6 * w, ground_y - 0.02 * hs,
            pixel(pick_color(rng, GEAR_COLORS), 0.6))
  # Texture and a smooth illumination / temperature gradient.
  img += rng.normal(0.0, 0.012, img.shape).astype(np.float32)
  gy = np.linspace(-1, 1, hs, dtype=np.float32)[:, None]
  gx = np.linspace(-1, 1, ws, dtype=np.float32)[None, :]
  img[..., :3] *= (1.0 + 0.08 * u(-1, 1) * gx + 0.06 * u(-1, 1) * gy)[..., None]
  img[..., 3] += 0.04 * (u(-1, 1) * gx + u(-1, 1) * gy)
  img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0), mode="nearest")
  return np.clip(img, 0.0, 1.0)


def add_clutter(cv: Canvas, rng: np.random.Generator, h: int, w: int) -> None:
  """Background objects and the odd passer-by, behind the person."""
  frame = (w / 2, 0.0, float(h))
  for _ in range(rng.poisson(0.8)):
    paint = Paint(pick_color(rng, GEAR_COLORS, 0.05), float(rng.uniform(0.15, 0.45)))
    x, y = rng.uniform(0, w), rng.uniform(0.2 * h, h)
    cv.box(x, y, rng.uniform(2, 0.25 * w), rng.uniform(3, 0.15 * h), 2.0, paint, frame)
  if rng.random() < 0.15:      # part of another pedestrian at the crop edge
    x = rng.choice([rng.uniform(-0.1, 0.12), rng.uniform(0.88, 1.1)]) * w
    hh = rng.uniform(0.7, 0.95) * h
    y0 = rng.uniform(0, h - hh + 1)
    body = Paint(pick_color(rng, TOP_COLORS), float(rng.uniform(0.45, 0.65)))
    cv.capsule((x, y0 + 0.2 * hh), (x, y0 + 0.9 * hh), 0.13 * hh, body, frame)
    cv.ellipse(x, y0 + 0.08 * hh, 0.06 * hh, 0.075 * hh,
               Paint(pick_color(rng, SKIN_COLORS), float(rng.uniform(0.8, 0.9))), frame)


def add_occluder(cv: Canvas, rng: np.random.Generator, h: int, w: int) -> None:
  """Something between the camera and the person: railing, bench, pole, box."""
  frame = (w / 2, 0.0, float(h))
  paint = Paint(pick_color(rng, np.concatenate([GEAR_COLORS, BOTTOM_COLORS])),
                float(rng.uniform(0.18, 0.36)))
  kind = rng.choice(["bar", "railing", "pole", "box"])
  if kind == "bar":
    top = h * (1 - rng.uniform(0.12, 0.3))
    cv.box(w / 2, (top + h) / 2 + 1, w, (h - top) / 2 + 1, 1.0, paint, frame, shade=False)
  elif kind == "railing":
    top = h * (1 - rng.uniform(0.25, 0.4))
    cv.box(w / 2, top, w, 1.5, 1.0, paint, frame, shade=False)
    for x in np.arange(rng.uniform(0, 6), w, rng.uniform(6, 10)):
      cv.box(x, (top + h) / 2, 1.2, (h - top) / 2, 0.5, paint, frame, shade=False)
  elif kind == "pole":
    x = rng.uniform(0.15, 0.85) * w
    cv.box(x, h / 2, rng.uniform(0.06, 0.13) * w, h, 1.0, paint, frame)
  else:
    x = rng.choice([0.15, 0.85]) * w
    cv.box(x, h * 0.88, rng.uniform(0.15, 0.3) * w, rng.uniform(0.1, 0.18) * h, 1.5, paint, frame)
