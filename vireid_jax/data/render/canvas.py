"""Drawing: a 4-channel float canvas (R, G, B, temperature) painted back to front
with anti-aliased shapes, each evaluated only inside its bounding box.
"""

from __future__ import annotations

import math

import numpy as np

from vireid_jax.data.render.identity import Paint, Pattern

# Per-channel shading strength across a limb (R, G, B, IR): the visible image
# shows the 3-D form strongly, the thermal image only a little.
_SHADE = np.array([0.38, 0.38, 0.38, 0.12], np.float32)


class Canvas:

  def __init__(self, img: np.ndarray):
    self.img = img
    self.h, self.w = img.shape[:2]

  def window(self, x0, y0, x1, y1):
    xa, xb = max(int(math.floor(x0)) - 1, 0), min(int(math.ceil(x1)) + 2, self.w)
    ya, yb = max(int(math.floor(y0)) - 1, 0), min(int(math.ceil(y1)) + 2, self.h)
    if xa >= xb or ya >= yb:
      return None
    xs = np.arange(xa, xb, dtype=np.float32)[None, :]
    ys = np.arange(ya, yb, dtype=np.float32)[:, None]
    return (slice(ya, yb), slice(xa, xb)), xs, ys

  def fill(self, win, alpha, paint: Paint, frame, cross=None):
    sl, xs, ys = win
    value = np.array(paint.rgb + (paint.ir,), np.float32)
    if paint.pattern is not None:
      m = pattern_mask(paint.pattern, xs, ys, frame)
      alt = np.array(paint.pattern.rgb2 + (paint.ir + paint.pattern.ir_delta,), np.float32)
      value = value + m[..., None] * (alt - value)
    if cross is not None:
      value = value * (1.0 - np.minimum(cross, 1.0)[..., None] ** 2 * _SHADE)
    region = self.img[sl]
    region += alpha[..., None] * (value - region)

  def capsule(self, p0, p1, r, paint, frame, clip_y=None):
    """A limb: all points within r of the segment p0-p1."""
    (x0, y0), (x1, y1) = p0, p1
    win = self.window(min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
    if win is None:
      return
    _, xs, ys = win
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy + 1e-6), 0.0, 1.0)
    d = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
    alpha = np.clip(r - d + 0.5, 0.0, 1.0)
    if clip_y is not None:   # keep only y <= clip_y (e.g. a sleeve ending at the elbow)
      alpha = alpha * np.clip(clip_y - ys + 0.5, 0.0, 1.0)
    self.fill(win, alpha, paint, frame, d / max(r, 1e-3))

  def ellipse(self, cx, cy, rx, ry, paint, frame, y_max=None, y_min=None, shade=True):
    win = self.window(cx - rx, cy - ry, cx + rx, cy + ry)
    if win is None:
      return
    _, xs, ys = win
    q = np.hypot((xs - cx) / rx, (ys - cy) / ry)
    alpha = np.clip((1.0 - q) * min(rx, ry) + 0.5, 0.0, 1.0)
    if y_max is not None:
      alpha = alpha * np.clip(y_max - ys + 0.5, 0.0, 1.0)
    if y_min is not None:
      alpha = alpha * np.clip(ys - y_min + 0.5, 0.0, 1.0)
    self.fill(win, alpha, paint, frame, q if shade else None)

  def trapezoid(self, cx0, y0, hw0, cx1, y1, hw1, paint, frame):
    """A horizontal-sided quad: centre and half-width interpolate from y0 to y1."""
    win = self.window(min(cx0 - hw0, cx1 - hw1), y0, max(cx0 + hw0, cx1 + hw1), y1)
    if win is None:
      return
    _, xs, ys = win
    t = np.clip((ys - y0) / max(y1 - y0, 1e-3), 0.0, 1.0)
    c = cx0 + t * (cx1 - cx0)
    hw = hw0 + t * (hw1 - hw0)
    alpha = (np.clip(hw - np.abs(xs - c) + 0.5, 0.0, 1.0)
             * np.clip(ys - y0 + 0.5, 0.0, 1.0) * np.clip(y1 - ys + 0.5, 0.0, 1.0))
    self.fill(win, alpha, paint, frame, np.abs(xs - c) / np.maximum(hw, 1e-3))

  def box(self, cx, cy, hx, hy, radius, paint, frame, shade=True):
    """A rounded rectangle with half sizes (hx, hy)."""
    win = self.window(cx - hx, cy - hy, cx + hx, cy + hy)
    if win is None:
      return
    _, xs, ys = win
    radius = min(radius, hx, hy)
    qx = np.maximum(np.abs(xs - cx) - (hx - radius), 0.0)
    qy = np.maximum(np.abs(ys - cy) - (hy - radius), 0.0)
    alpha = np.clip(radius - np.hypot(qx, qy) + 0.5, 0.0, 1.0)
    cross = np.broadcast_to(np.abs(xs - cx) / hx, alpha.shape) if shade else None
    self.fill(win, alpha, paint, frame, cross)


def pattern_mask(p: Pattern, xs, ys, frame) -> np.ndarray:
  """Soft 0..1 mask of the pattern's second colour, about 1 px anti-aliased."""
  ox, oy, scale = frame
  u = (xs - ox) / scale
  v = (ys - oy) / scale
  px = p.period * scale                               # period in pixels
  sharp = max(1.0, px / (2 * math.pi)) * 1.6
  two_pi = 2 * math.pi / p.period
  if p.kind == "hstripes":
    s = np.sin(v * two_pi + p.phase)
  elif p.kind == "vstripes":
    s = np.sin(u * two_pi + p.phase)
  elif p.kind == "diagonal":
    s = np.sin((u * math.cos(p.angle) + v * math.sin(p.angle)) * two_pi + p.phase)
  elif p.kind == "checks":
    s = np.sin(u * two_pi + p.phase) * np.sin(v * two_pi + p.phase) * 2.0
  elif p.kind == "dots":
    fu = np.mod(u / p.period + p.phase, 1.0) - 0.5
    fv = np.mod(v / p.period, 1.0) - 0.5
    return np.clip((0.3 - np.hypot(fu, fv)) * px + 0.5, 0.0, 1.0)
  elif p.kind == "block":     # a contrasting yoke across the chest and shoulders
    return np.clip((0.10 + p.period - v) * scale + 0.5, 0.0, 1.0)
  elif p.kind == "emblem":    # a print on the chest (hidden in back views by _draw_person)
    d = np.maximum(np.abs(u), np.abs(v - 0.11)) - 0.038
    return np.clip(-d * scale + 0.5, 0.0, 1.0)
  else:
    raise ValueError(f"unknown pattern kind {p.kind!r}")
  return np.clip(0.5 + s * sharp, 0.0, 1.0)
