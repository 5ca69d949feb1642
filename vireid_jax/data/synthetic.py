r"""A small synthetic visible-infrared ReID dataset, written in the real layouts.

    python -m vireid_jax.data.synthetic --layout=sysu --out=DIR [--num_ids=40] [--seed=0]
    python -m vireid_jax.data.synthetic --layout=regdb --out=DIR
    python -m vireid_jax.data.synthetic --layout=sysu --out=DIR \
        --sample_sheet=docs/synthetic_samples.png

It is a fair stand-in for SYSU-MM01 / RegDB, not a toy, so that the demo and
the ablations measure something: every identity carries

* cues that survive both modalities: body proportions (head size, shoulder and
  hip width, leg length, limb thickness), a clothing texture (stripes, checks,
  dots, colour blocks, an emblem) with its own period and orientation, sleeve
  and trouser length (bare skin is hot in infrared), hair length, garment
  structure (an open jacket over a shirt, belt, scarf, boots, trouser stripes)
  and accessories (hat, backpack, shoulder bag);
* cues only the visible cameras see: clothing, shoe, hair and skin colours,
  drawn from small palettes so that several identities share a colour.

Infrared images are rendered from a separate "temperature" channel, not from
the colours: skin is hot, clothing is as warm as its material class (thin,
cotton, knit, coat ...) which is drawn independently of its colour, prints
change the emissivity a little, accessories and backgrounds are cool, heaters
and lamps are hot. They are single-channel, blurrier, noisier and lower in
contrast. So a model that matches on colour fails across modalities, and one
that learns shape, texture and accessories succeeds.

Each image also gets nuisance: view (front, back, side), position, scale,
walking pose, per-camera scene and colour cast, illumination, background
clutter, passers-by and partial occlusion. Scenes are per camera; SYSU camera 3
(infrared) films the same room as camera 2, as in the real data. RegDB images
come from one co-registered camera pair, so each visible image has a thermal
twin with the same pose, as in the real data.

How hard it is (SYSU layout, all-search single-shot, 10 trials; a two-stem
ResNet-18 trained from scratch with CE + batch-hard triplet, P=8, K=4, on a
GPU): with 40 ids (12 test ids, chance 8%) about 16% Rank-1 after 240 steps
and 33% Rank-1 / 45% mAP after 1200, while visible-to-visible Rank-1 is about
86%: the modality gap, not the identities, is what is hard. With 12 test ids
the trial-to-trial noise is several points; with 200 ids (60 test ids) the
same model reaches 30% Rank-1 / 34% mAP after 3000 steps, still rising.

Generation is deterministic: the same arguments and library versions give
byte-identical files.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

LAYOUTS = ("sysu", "regdb")
SYSU_RGB_CAMERAS = (1, 2, 4, 5)
SYSU_IR_CAMERAS = (3, 6)
SYSU_INDOOR_CAMERAS = (1, 2)
DEFAULT_IMAGES_PER_CAM = {"sysu": (4, 12), "regdb": (10, 10)}

# ----------------------------------------------------------------------------
# Appearance vocabularies. Colours are sRGB in 0..1; "ir" values are apparent
# temperatures in 0..1 (0 = cold sky, 1 = hottest).

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

# Per-channel shading strength across a limb (R, G, B, IR): the visible image
# shows the 3-D form strongly, the thermal image only a little.
_SHADE = np.array([0.38, 0.38, 0.38, 0.12], np.float32)


@dataclasses.dataclass(frozen=True)
class Pattern:
  """A clothing texture, defined in body coordinates so it moves with the body."""
  kind: str                      # one of PATTERNS
  period: float                  # in units of body height
  angle: float                   # radians, for diagonal stripes
  phase: float
  rgb2: tuple[float, float, float]
  ir_delta: float                # print/material contrast seen in infrared


@dataclasses.dataclass(frozen=True)
class Paint:
  """What a garment or body part looks like in both modalities."""
  rgb: tuple[float, float, float]
  ir: float
  pattern: Pattern | None = None


@dataclasses.dataclass(frozen=True)
class Person:
  """Identity attributes; all lengths are fractions of the body height."""
  pid: int
  gender: str
  head: float
  shoulder: float
  hip: float
  leg: float
  limb: float
  stance: float
  arm_out: float
  skin: Paint
  hair: Paint
  hair_style: str                # short | long | bald
  top: Paint
  top_material: str
  top_length: float              # how far the top reaches below the hips
  sleeves: str                   # long | short
  bottom: Paint
  bottom_style: str              # trousers | shorts | skirt
  shoes: Paint
  hat: Paint | None
  hat_style: str
  backpack: Paint | None
  backpack_size: tuple[float, float]
  bag: Paint | None
  bag_side: int
  inner: Paint | None = None         # shirt showing through an open jacket (front views)
  inner_width: float = 0.4
  belt: Paint | None = None
  scarf: Paint | None = None
  boots: bool = False
  leg_stripe: Paint | None = None    # a side stripe down the trousers


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


# ----------------------------------------------------------------------------
# Identities.

def _color(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.04):
  c = palette[rng.integers(len(palette))] + rng.normal(0.0, jitter, 3)
  return tuple(float(v) for v in np.clip(c, 0.02, 0.98))


def _luma(rgb) -> float:
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _pattern(rng: np.random.Generator, base_rgb, kind: str) -> Pattern | None:
  if kind == "solid":
    return None
  for _ in range(20):   # a second colour that visibly differs from the base
    rgb2 = _color(rng, TOP_COLORS, 0.03) if rng.random() < 0.6 else (
        (0.93, 0.93, 0.91) if _luma(base_rgb) < 0.5 else (0.08, 0.08, 0.09))
    if abs(_luma(rgb2) - _luma(base_rgb)) > 0.18 or np.abs(np.subtract(rgb2, base_rgb)).sum() > 0.6:
      break
  return Pattern(kind=kind, period=float(rng.uniform(0.05, 0.095)),
                 angle=float(rng.choice([-1, 1]) * rng.uniform(0.45, 1.1)),
                 phase=float(rng.uniform(0, 2 * math.pi)), rgb2=rgb2,
                 ir_delta=float(rng.choice([-1, 1]) * rng.uniform(0.14, 0.24)))


def sample_person(pid: int, rng: np.random.Generator, gender: str | None = None) -> Person:
  """Draws the fixed appearance of one identity."""
  gender = gender or str(rng.choice(["male", "female"]))
  female = gender == "female"
  u = rng.uniform
  skin = Paint(_color(rng, SKIN_COLORS, 0.02), float(u(0.84, 0.93)))
  hair_style = str(rng.choice(["short", "long", "bald"], p=[0.25, 0.75, 0.0] if female
                              else [0.8, 0.1, 0.1]))
  hair = Paint(_color(rng, HAIR_COLORS, 0.02), float(u(0.50, 0.62)))

  material = str(rng.choice(list(TOP_MATERIALS)))
  top_rgb = _color(rng, TOP_COLORS)
  top_pattern = _pattern(rng, top_rgb, str(rng.choice(PATTERNS, p=PATTERN_PROBS)))
  top = Paint(top_rgb, TOP_MATERIALS[material] + float(rng.normal(0, 0.025)), top_pattern)
  sleeves = "long" if material in ("knit", "coat") else str(rng.choice(["long", "short"]))
  top_length = float(u(0.08, 0.16) if material == "coat" else u(0.0, 0.04))

  bottom_style = str(rng.choice(["trousers", "skirt", "shorts"], p=[0.55, 0.3, 0.15] if female
                                else [0.8, 0.0, 0.2]))
  bottom_rgb = _color(rng, BOTTOM_COLORS, 0.03)
  bottom_ir = (TROUSER_MATERIALS[str(rng.choice(list(TROUSER_MATERIALS)))]
               if bottom_style == "trousers" else float(u(0.52, 0.62)))
  bottom_kind = str(rng.choice(["solid", "checks", "vstripes", "hstripes"],
                               p=[0.76, 0.1, 0.07, 0.07]))
  bottom = Paint(bottom_rgb, bottom_ir + float(rng.normal(0, 0.02)),
                 _pattern(rng, bottom_rgb, bottom_kind))
  shoes = Paint(_color(rng, GEAR_COLORS, 0.02), float(u(0.30, 0.40)))

  hat = backpack = bag = None
  if rng.random() < 0.2:
    hat = Paint(_color(rng, GEAR_COLORS, 0.03), float(u(0.40, 0.50)))
  hat_style = str(rng.choice(["cap", "beanie"]))
  if rng.random() < 0.3:
    backpack = Paint(_color(rng, GEAR_COLORS, 0.03), float(u(0.24, 0.34)))
  backpack_size = (float(u(0.19, 0.28)), float(u(0.65, 0.95)))
  if rng.random() < 0.28:
    bag = Paint(_color(rng, GEAR_COLORS, 0.03), float(u(0.26, 0.36)))
  bag_side = int(rng.choice([-1, 1]))
  # Garment structure: seen in both modalities (its parts differ in colour and in warmth).
  inner = belt = scarf = leg_stripe = None
  if material in ("coat", "knit", "synthetic") and rng.random() < 0.45:
    inner_rgb = _color(rng, TOP_COLORS)
    inner = Paint(inner_rgb, float(u(0.58, 0.76)),
                  _pattern(rng, inner_rgb, "hstripes") if rng.random() < 0.3 else None)
  inner_width = float(u(0.25, 0.5))
  if rng.random() < 0.25:
    belt = Paint(_color(rng, GEAR_COLORS, 0.02), float(u(0.28, 0.36)))
  if rng.random() < 0.15:
    scarf = Paint(_color(rng, TOP_COLORS), float(u(0.45, 0.6)))
  boots = bool(rng.random() < 0.25)
  if bottom_style == "trousers" and rng.random() < 0.15:
    leg_stripe = Paint(_color(rng, TOP_COLORS),
                       bottom.ir + float(rng.choice([-1, 1]) * u(0.12, 0.2)))
  return Person(
      pid=pid, gender=gender, head=float(u(0.058, 0.082)),
      shoulder=float(u(0.10, 0.16) - (0.012 if female else 0.0)),
      hip=float(u(0.07, 0.11)), leg=float(u(0.42, 0.53)), limb=float(u(0.020, 0.036)),
      stance=float(u(0.02, 0.08)), arm_out=float(u(0.0, 0.12)), skin=skin, hair=hair,
      hair_style=hair_style, top=top, top_material=material, top_length=top_length,
      sleeves=sleeves, bottom=bottom, bottom_style=bottom_style, shoes=shoes, hat=hat,
      hat_style=hat_style, backpack=backpack, backpack_size=backpack_size, bag=bag,
      bag_side=bag_side, inner=inner, inner_width=inner_width, belt=belt, scarf=scarf,
      boots=boots, leg_stripe=leg_stripe)


# ----------------------------------------------------------------------------
# Drawing: a 4-channel float canvas (R, G, B, temperature) painted back to front
# with anti-aliased shapes, each evaluated only inside its bounding box.

class _Canvas:

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
      m = _pattern_mask(paint.pattern, xs, ys, frame)
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


def _pattern_mask(p: Pattern, xs, ys, frame) -> np.ndarray:
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


@dataclasses.dataclass(frozen=True)
class Pose:
  """Per-image nuisance of the person: placement, view and walking phase."""
  cx: float
  top: float
  height: float
  view: str          # front | back | side
  facing: int        # +1 / -1: side-view direction (and mirror of the bag side)
  stride: float      # -1..1 walking phase
  swing: float       # arm swing, -1..1
  lean: float        # horizontal shoulder offset in pixels


def sample_pose(rng: np.random.Generator, h: int, w: int, views=("front", "back", "side"),
                view_probs=(0.4, 0.35, 0.25)) -> Pose:
  height = h * rng.uniform(0.80, 0.95)
  stride = rng.uniform(-1, 1)
  return Pose(cx=float(w / 2 + rng.normal(0, 0.05 * w)),
              top=float(rng.uniform(0.01 * h, max(0.01 * h, h - height - 0.01 * h))),
              height=float(height), view=str(rng.choice(views, p=view_probs)),
              facing=int(rng.choice([-1, 1])), stride=float(stride),
              swing=float(-stride + rng.normal(0, 0.2)), lean=float(rng.normal(0, 0.01 * height)))


def _draw_person(cv: _Canvas, p: Person, pose: Pose) -> None:
  """Paints one person: shapes back to front, depending on the view."""
  H, cx, y0, view, f = pose.height, pose.cx, pose.top, pose.view, pose.facing
  side = view == "side"
  back = view == "back"
  hr = p.head * H
  rx = 0.8 * hr
  sx = cx + pose.lean                    # shoulder-line centre
  head_cy = y0 + hr
  head_cx = sx + (0.12 * rx * f if side else 0.0)
  sh_y = y0 + 2.0 * hr + 0.03 * H
  hip_y = y0 + H * (1.0 - p.leg)
  foot_y = y0 + H - 0.012 * H
  sw = p.shoulder * H * (0.55 if side else 1.0)
  hw = p.hip * H * (0.62 if side else 1.0)
  lr = p.limb * H
  ar = 0.85 * lr
  frame = (sx, sh_y, H)
  top = p.top
  if top.pattern is not None and top.pattern.kind == "emblem" and view != "front":
    top = Paint(top.rgb, top.ir, None)
  # Bag strap and bag side as seen in the image (mirrored in back views).
  bag_dx = -p.bag_side if back else p.bag_side

  # Long hair falls behind the shoulders in front/side views.
  if p.hair_style == "long" and not back:
    cv.ellipse(head_cx - (0.3 * rx * f if side else 0.0), head_cy + 0.9 * hr, 1.2 * rx, 1.8 * hr,
               p.hair, frame)
  # Side-view backpack sits behind the back.
  if p.backpack is not None and side:
    bh, _ = p.backpack_size
    cv.box(sx - f * (sw + 0.05 * H), sh_y + 0.03 * H + bh * H / 2, 0.055 * H, bh * H / 2,
           0.02 * H, p.backpack, frame)

  # Legs.
  leg_len = foot_y - hip_y
  legs = []
  for k, s in ((-1, -1.0), (1, 1.0)):
    if side:
      hx = sx + 0.1 * hw * s
      a = 0.38 * pose.stride * s * f
      b = a - 0.18 * f * abs(pose.stride)
    else:
      hx = cx + 0.5 * hw * s
      a = s * p.stance + 0.06 * pose.stride
      b = a * 0.5
    knee = (hx + 0.5 * leg_len * math.sin(a), hip_y + 0.5 * leg_len * math.cos(a))
    foot = (knee[0] + 0.5 * leg_len * math.sin(b), knee[1] + 0.5 * leg_len * math.cos(b))
    legs.append(((hx, hip_y), knee, foot))
  for hip, knee, foot in legs:
    if p.bottom_style == "trousers":
      cv.capsule(hip, knee, 1.15 * lr, p.bottom, frame)
      cv.capsule(knee, foot, 1.0 * lr, p.bottom, frame)
      if p.leg_stripe is not None and not side:
        off = np.sign(hip[0] - cx) * 0.75 * lr
        cv.capsule((hip[0] + off, hip[1]), (foot[0] + off, foot[1] - lr), 0.3 * lr,
                   p.leg_stripe, frame)
    else:
      cv.capsule(hip, knee, 0.9 * lr, p.skin, frame)
      cv.capsule(knee, foot, 0.8 * lr, p.skin, frame)
      if p.bottom_style == "shorts":
        mid = (0.4 * hip[0] + 0.6 * knee[0], 0.4 * hip[1] + 0.6 * knee[1])
        cv.capsule(hip, mid, 1.2 * lr, p.bottom, frame)
    shoe_rx = 1.9 * lr if side else 1.15 * lr
    if p.boots:
      cv.capsule((foot[0], foot[1] - 0.07 * H), foot, 1.15 * lr, p.shoes, frame)
    cv.ellipse(foot[0] + (0.7 * lr * f if side else 0.0), foot[1], shoe_rx, 0.75 * lr,
               p.shoes, frame)
  # Pelvis / skirt.
  if p.bottom_style == "skirt":
    cv.trapezoid(cx, hip_y - 0.03 * H, hw, cx, hip_y + 0.2 * H, hw * 1.55, p.bottom, frame)
  else:
    cv.trapezoid(cx, hip_y - 0.03 * H, hw, cx, hip_y + 0.06 * H, hw * 0.95, p.bottom, frame)

  # Far arm in side view (mostly hidden by the torso).
  shoulder_pts = [(sx - (sw - 0.8 * ar), sh_y + ar), (sx + (sw - 0.8 * ar), sh_y + ar)]
  upper, fore = 0.17 * H, 0.15 * H

  def arm(shoulder, a, bend):
    elbow = (shoulder[0] + upper * math.sin(a), shoulder[1] + upper * math.cos(a))
    hand = (elbow[0] + fore * math.sin(a + bend), elbow[1] + fore * math.cos(a + bend))
    if p.sleeves == "long":
      cv.capsule(shoulder, elbow, 1.12 * ar, top, frame)
      cv.capsule(elbow, hand, 1.0 * ar, top, frame)
    else:
      cv.capsule(elbow, hand, 0.85 * ar, p.skin, frame)
      cv.capsule(shoulder, elbow, 0.9 * ar, p.skin, frame)
      mid = (0.45 * shoulder[0] + 0.55 * elbow[0], 0.45 * shoulder[1] + 0.55 * elbow[1])
      cv.capsule(shoulder, mid, 1.2 * ar, top, frame)
    cv.ellipse(hand[0], hand[1] + 0.3 * ar, 1.05 * ar, 1.25 * ar, p.skin, frame)

  if side:
    arm((sx, sh_y + ar), -0.45 * pose.swing * f, 0.25 * f)

  # Torso (the top), with rounded shoulders.
  bottom_y = hip_y + p.top_length * H + 0.02 * H
  cv.trapezoid(sx, sh_y - 0.01 * H, sw, cx, bottom_y, hw * (1.08 if p.top_length > 0.05 else 1.0),
               top, frame)
  cv.capsule((sx - sw + 1.1 * ar, sh_y + 0.3 * ar), (sx + sw - 1.1 * ar, sh_y + 0.3 * ar),
             1.1 * ar, top, frame)

  if p.inner is not None and view == "front":
    cv.trapezoid(sx, sh_y + 0.01 * H, p.inner_width * sw, cx, bottom_y - 0.01 * H,
                 p.inner_width * hw, p.inner, frame)
  if p.belt is not None and p.top_length < 0.05:
    cv.trapezoid(cx, hip_y - 0.005 * H, hw * 1.02, cx, hip_y + 0.018 * H, hw * 1.02, p.belt, frame)

  # Back view: the backpack covers the back.
  if p.backpack is not None and back:
    bh, bw = p.backpack_size
    cv.box(sx, sh_y + 0.02 * H + bh * H / 2, bw * sw, bh * H / 2, 0.03 * H, p.backpack, frame)

  # Arms.
  if side:
    arm((sx, sh_y + ar), 0.45 * pose.swing * f, 0.25 * f)
  else:
    for k, s in enumerate((-1.0, 1.0)):
      arm(shoulder_pts[k], s * (0.1 + p.arm_out) + 0.08 * pose.swing * s, -s * 0.05)

  # Straps (front view backpack), shoulder bag.
  if p.backpack is not None and view == "front":
    for s in (-1.0, 1.0):
      cv.capsule((sx + s * 0.55 * sw, sh_y - 0.005 * H), (sx + s * 0.5 * sw, sh_y + 0.2 * H),
                 0.014 * H, p.backpack, frame)
  if p.bag is not None:
    if side:
      bag_c = (cx + 0.25 * hw * f, hip_y + 0.02 * H)
      cv.capsule((sx, sh_y), bag_c, 0.009 * H, p.bag, frame)
    else:
      bag_c = (cx + bag_dx * (hw + 0.045 * H), hip_y + 0.01 * H)
      cv.capsule((sx - bag_dx * 0.6 * sw, sh_y), bag_c, 0.009 * H, p.bag, frame)
    cv.box(bag_c[0], bag_c[1], 0.05 * H, 0.06 * H, 0.012 * H, p.bag, frame)

  # Neck, scarf, head, hair, hat.
  cv.capsule((head_cx, head_cy), (sx, sh_y), 0.42 * rx, p.skin, frame)
  if p.scarf is not None:
    cv.capsule((head_cx, head_cy + 0.9 * hr), (sx, sh_y), 0.55 * rx, p.scarf, frame)
    cv.capsule((sx - 0.55 * sw, sh_y), (sx + 0.55 * sw, sh_y), 0.022 * H, p.scarf, frame)
    end_x = sx + (0.25 * sw if not back else -0.25 * sw)
    cv.capsule((end_x, sh_y), (end_x, sh_y + 0.13 * H), 0.016 * H, p.scarf, frame)
  if back:
    cv.ellipse(head_cx, head_cy, rx, hr, p.skin, frame)
    if p.hair_style == "long":
      cv.ellipse(head_cx, head_cy + 0.7 * hr, 1.2 * rx, 1.75 * hr, p.hair, frame)
      cv.ellipse(head_cx, head_cy, 1.05 * rx, 1.05 * hr, p.hair, frame)
    elif p.hair_style == "short":
      cv.ellipse(head_cx, head_cy, 1.05 * rx, 1.05 * hr, p.hair, frame, y_max=head_cy + 0.5 * hr)
  else:
    cv.ellipse(head_cx, head_cy, rx, hr, p.skin, frame)
    if p.hair_style != "bald":
      dx = -0.18 * rx * f if side else 0.0
      cut = head_cy - (0.05 if side else 0.25) * hr
      cv.ellipse(head_cx + dx, head_cy, 1.07 * rx, 1.06 * hr, p.hair, frame, y_max=cut)
  if p.hat is not None:
    if p.hat_style == "cap":
      cv.ellipse(head_cx, head_cy - 0.05 * hr, 1.1 * rx, 1.05 * hr, p.hat, frame,
                 y_max=head_cy - 0.3 * hr)
      if side:
        cv.capsule((head_cx, head_cy - 0.33 * hr), (head_cx + f * 1.8 * rx, head_cy - 0.3 * hr),
                   0.12 * hr, p.hat, frame)
      elif not back:
        cv.capsule((head_cx - 1.1 * rx, head_cy - 0.32 * hr),
                   (head_cx + 1.1 * rx, head_cy - 0.32 * hr),
                   0.13 * hr, p.hat, frame)
    else:
      cv.ellipse(head_cx, head_cy - 0.1 * hr, 1.12 * rx, 1.1 * hr, p.hat, frame,
                 y_max=head_cy - 0.05 * hr)


# ----------------------------------------------------------------------------
# Scenes: one wide background per scene key (both modalities from the same
# geometry), from which every image crops a random window.

def _rect(img, x0, y0, x1, y1, value):
  h, w = img.shape[:2]
  xa, xb = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
  ya, yb = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
  if xa < xb and ya < yb:
    img[ya:yb, xa:xb] = value


def _disc(img, cx, cy, rx, ry, value):
  h, w = img.shape[:2]
  ys = np.arange(h, dtype=np.float32)[:, None]
  xs = np.arange(w, dtype=np.float32)[None, :]
  mask = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
  img[mask] = value


def _v(rgb, ir):
  return np.array(tuple(rgb) + (ir,), np.float32)


def make_scene(key: str, seed: int, h: int, w: int) -> np.ndarray:
  """Returns a (h*5/4, 3*w, 4) float32 background: RGB + temperature."""
  rng = np.random.default_rng([seed, 2, sum(ord(c) * 31 ** i for i, c in enumerate(key)) % 2**31])
  hs, ws = h + h // 4, 3 * w
  img = np.zeros((hs, ws, 4), np.float32)
  u = rng.uniform
  if key.startswith("indoor"):
    floor_y = hs * u(0.6, 0.72)
    wall = _v(_color(rng, np.array([(0.86, 0.80, 0.68), (0.90, 0.90, 0.88), (0.72, 0.74, 0.76),
                                    (0.70, 0.80, 0.70), (0.70, 0.78, 0.86)], np.float32), 0.02),
              u(0.22, 0.30))
    floor = _v(_color(rng, np.array([(0.50, 0.50, 0.50), (0.55, 0.40, 0.26), (0.32, 0.32, 0.34),
                                     (0.62, 0.38, 0.30)], np.float32), 0.02), u(0.18, 0.26))
    img[:] = wall
    img[int(floor_y):] = floor
    # Receding floor tiles.
    y, step = floor_y + 3, 3.0
    while y < hs:
      _rect(img, 0, y, ws, y + 1, floor * np.array([0.85, 0.85, 0.85, 0.97], np.float32))
      step *= 1.5
      y += step
    _rect(img, 0, floor_y - 2, ws, floor_y, wall * np.array([0.6, 0.6, 0.6, 0.95], np.float32))
    for _ in range(rng.integers(4, 8)):
      kind = rng.choice(["door", "window", "pillar", "poster", "radiator", "lamp"])
      x = u(0, ws)
      if kind == "door":
        dw = u(0.3, 0.5) * w
        _rect(img, x, floor_y - u(0.45, 0.55) * hs, x + dw, floor_y,
              _v(_color(rng, np.array([(0.45, 0.30, 0.18), (0.55, 0.55, 0.58), (0.3, 0.35, 0.45)],
                                      np.float32)), wall[3] - 0.03))
      elif kind == "window":
        wy = u(0.05, 0.2) * hs
        _rect(img, x, wy, x + u(0.3, 0.6) * w, wy + u(0.18, 0.3) * hs, _v((0.93, 0.96, 1.0), 0.12))
      elif kind == "pillar":
        _rect(img, x, 0, x + u(0.15, 0.3) * w, floor_y,
              wall * np.array([0.9, 0.9, 0.9, 1.05], np.float32))
      elif kind == "poster":
        py = u(0.15, 0.35) * hs
        _rect(img, x, py, x + u(0.15, 0.3) * w, py + u(0.1, 0.18) * hs,
              _v(_color(rng, TOP_COLORS), wall[3]))
      elif kind == "radiator":
        _rect(img, x, floor_y - 0.12 * hs, x + u(0.3, 0.5) * w, floor_y - 0.03 * hs,
              _v((0.85, 0.85, 0.83), u(0.6, 0.7)))
      else:
        _disc(img, x, u(0.03, 0.12) * hs, 0.08 * w, 0.03 * hs, _v((1.0, 0.97, 0.85), 0.8))
  elif key.startswith("outdoor") or key == "regdb":
    sky_y = hs * u(0.12, 0.28)
    ground_y = hs * u(0.55, 0.68)
    img[:] = _v((0.72, 0.82, 0.93) if rng.random() < 0.6 else (0.78, 0.78, 0.8), 0.08)
    img[int(ground_y):] = _v(_color(rng, np.array([(0.55, 0.55, 0.53), (0.32, 0.32, 0.34),
                                                   (0.62, 0.55, 0.45)], np.float32), 0.02),
                             u(0.30, 0.38))
    x = -u(0, 0.5) * w
    while x < ws:      # buildings with window grids
      bw = u(0.5, 1.2) * w
      by = u(0.0, 1.0) * sky_y
      bcol = _v(_color(rng, np.array([(0.62, 0.62, 0.62), (0.80, 0.74, 0.62), (0.60, 0.36, 0.28),
                                      (0.88, 0.88, 0.86)], np.float32), 0.03), u(0.30, 0.38))
      _rect(img, x, by, x + bw, ground_y, bcol)
      win = _v((0.25, 0.30, 0.38), 0.26 if rng.random() < 0.7 else 0.45)
      for wy in np.arange(by + 4, ground_y - 8, u(9, 13)):
        for wx in np.arange(x + 3, x + bw - 6, u(8, 12)):
          _rect(img, wx, wy, wx + 4, wy + 5, win)
      x += bw + u(0, 0.3) * w
    for _ in range(rng.integers(1, 4)):   # trees
      tx = u(0, ws)
      _rect(img, tx - 2, ground_y - 0.25 * hs, tx + 2, ground_y, _v((0.35, 0.24, 0.14), 0.28))
      _disc(img, tx, ground_y - 0.3 * hs, u(0.25, 0.45) * w, u(0.12, 0.18) * hs,
            _v(_color(rng, np.array([(0.2, 0.45, 0.2), (0.3, 0.5, 0.22)], np.float32)), 0.2))
    # Kerb, paving joints and grass strip.
    _rect(img, 0, ground_y, ws, ground_y + 2, _v((0.75, 0.75, 0.73), 0.33))
    if rng.random() < 0.5:
      _rect(img, 0, ground_y + 2, ws, ground_y + 0.08 * hs, _v((0.3, 0.55, 0.25), 0.25))
    y, step = ground_y + 6, 4.0
    while y < hs:
      _rect(img, 0, y, ws, y + 1,
            img[min(int(y), hs - 1), 0] * np.array([0.85, 0.85, 0.85, 0.97], np.float32))
      step *= 1.45
      y += step
    if rng.random() < 0.5:   # a parked car: cool body, warm bonnet
      cxr = u(0.2, 0.8) * ws
      _rect(img, cxr - 0.6 * w, ground_y - 0.18 * hs, cxr + 0.6 * w, ground_y + 0.04 * hs,
            _v(_color(rng, GEAR_COLORS), 0.3))
      _rect(img, cxr + 0.2 * w, ground_y - 0.12 * hs, cxr + 0.6 * w, ground_y - 0.02 * hs,
            _v(_color(rng, GEAR_COLORS), 0.6))
  else:
    raise ValueError(f"unknown scene {key!r}")
  # Texture and a smooth illumination / temperature gradient.
  img += rng.normal(0.0, 0.012, img.shape).astype(np.float32)
  gy = np.linspace(-1, 1, hs, dtype=np.float32)[:, None]
  gx = np.linspace(-1, 1, ws, dtype=np.float32)[None, :]
  img[..., :3] *= (1.0 + 0.08 * u(-1, 1) * gx + 0.06 * u(-1, 1) * gy)[..., None]
  img[..., 3] += 0.04 * (u(-1, 1) * gx + u(-1, 1) * gy)
  img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0), mode="nearest")
  return np.clip(img, 0.0, 1.0)


def _clutter(cv: _Canvas, rng: np.random.Generator, h: int, w: int) -> None:
  """Background objects and the odd passer-by, behind the person."""
  frame = (w / 2, 0.0, float(h))
  for _ in range(rng.poisson(0.8)):
    paint = Paint(_color(rng, GEAR_COLORS, 0.05), float(rng.uniform(0.15, 0.45)))
    x, y = rng.uniform(0, w), rng.uniform(0.2 * h, h)
    cv.box(x, y, rng.uniform(2, 0.25 * w), rng.uniform(3, 0.15 * h), 2.0, paint, frame)
  if rng.random() < 0.15:      # part of another pedestrian at the crop edge
    x = rng.choice([rng.uniform(-0.1, 0.12), rng.uniform(0.88, 1.1)]) * w
    hh = rng.uniform(0.7, 0.95) * h
    y0 = rng.uniform(0, h - hh + 1)
    body = Paint(_color(rng, TOP_COLORS), float(rng.uniform(0.45, 0.65)))
    cv.capsule((x, y0 + 0.2 * hh), (x, y0 + 0.9 * hh), 0.13 * hh, body, frame)
    cv.ellipse(x, y0 + 0.08 * hh, 0.06 * hh, 0.075 * hh,
               Paint(_color(rng, SKIN_COLORS), float(rng.uniform(0.8, 0.9))), frame)


def _occluder(cv: _Canvas, rng: np.random.Generator, h: int, w: int) -> None:
  """Something between the camera and the person: railing, bench, pole, box."""
  frame = (w / 2, 0.0, float(h))
  paint = Paint(_color(rng, np.concatenate([GEAR_COLORS, BOTTOM_COLORS])),
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
  cv = _Canvas(np.array(scene[oy:oy + h, ox:ox + w], np.float32))
  crng = np.random.default_rng(nz.clutter_seed)
  _clutter(cv, crng, h, w)
  _draw_person(cv, person, nz.pose)
  if nz.occlude:
    _occluder(cv, crng, h, w)
  return cv.img


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


# ----------------------------------------------------------------------------
# Layouts.

def _check_args(layout: str, out: str, num_ids: int, images_per_cam, image_size) -> tuple[int, int]:
  if layout not in LAYOUTS:
    raise ValueError(f"layout={layout!r}: use one of {LAYOUTS}.")
  min_ids = 5 if layout == "sysu" else 4
  if num_ids < min_ids:
    raise ValueError(f"num_ids={num_ids}: the {layout} layout needs at least {min_ids} ids "
                     "(train, val and test splits each need identities).")
  lo, hi = (int(v) for v in images_per_cam)
  if not 1 <= lo <= hi:
    raise ValueError(f"images_per_cam={tuple(images_per_cam)}: give (min, max) with "
                     "1 <= min <= max.")
  h, w = (int(v) for v in image_size)
  if h < 32 or w < 16:
    raise ValueError(f"image_size={tuple(image_size)}: give (height, width) of at least (32, 16).")
  if os.path.isdir(out) and os.listdir(out):
    raise FileExistsError(f"Output folder {out!r} is not empty: give a new or empty folder "
                          "(files from another generation would be mixed in).")
  return lo, hi


def _sysu_plan(num_ids: int, seed: int, lo: int, hi: int):
  """Chooses person ids (with gaps), the split, and which cameras see whom."""
  rng = np.random.default_rng([seed, 3])
  pool = np.arange(1, num_ids + max(2, num_ids // 8) + 1)
  pids = np.sort(rng.choice(pool, num_ids, replace=False))
  n_test = max(1, int(round(0.3 * num_ids)))
  n_val = max(1, int(round(0.1 * num_ids)))
  perm = rng.permutation(pids)
  test = sorted(int(v) for v in perm[:n_test])
  val = sorted(int(v) for v in perm[n_test:n_test + n_val])
  train = sorted(int(v) for v in perm[n_test + n_val:])
  # A few test ids are filmed outdoors only (no indoor-search gallery), as in the real data.
  no_indoor = {int(v) for v in rng.choice(test, len(test) // 10, replace=False)}
  counts = {}   # (pid, cam) -> number of images
  for pid in (int(v) for v in pids):
    prng = np.random.default_rng([seed, 4, pid])
    present = {cam: prng.random() < 0.72 for cam in range(1, 7)}
    if pid in no_indoor:
      present[1] = present[2] = False
      if not (present[4] or present[5]):
        present[int(prng.choice([4, 5]))] = True
    elif pid in test and not (present[1] or present[2]):
      present[int(prng.choice([1, 2]))] = True
    if not any(present[c] for c in SYSU_RGB_CAMERAS):
      present[int(prng.choice(SYSU_RGB_CAMERAS))] = True
    if not any(present[c] for c in SYSU_IR_CAMERAS):
      present[int(prng.choice(SYSU_IR_CAMERAS))] = True
    for cam in range(1, 7):
      if present[cam]:
        counts[(pid, cam)] = int(prng.integers(lo, hi + 1))
  return train, val, test, counts


def _generate_sysu(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int) -> None:
  train, val, test, counts = _sysu_plan(num_ids, seed, lo, hi)
  os.makedirs(os.path.join(out, "exp"), exist_ok=True)
  for name, ids in (("train_id.txt", train), ("val_id.txt", val), ("test_id.txt", test)):
    with open(os.path.join(out, "exp", name), "w") as f:
      f.write(",".join(str(i) for i in ids))
  for cam in range(1, 7):
    os.makedirs(os.path.join(out, f"cam{cam}"), exist_ok=True)
  scenes = {}
  for (pid, cam), n in sorted(counts.items()):
    spec = SYSU_CAMERAS[cam]
    if spec.scene not in scenes:
      scenes[spec.scene] = make_scene(spec.scene, seed, h, w)
    scene = scenes[spec.scene]
    person = sample_person(pid, np.random.default_rng([seed, 1, pid]))
    folder = os.path.join(out, f"cam{cam}", f"{pid:04d}")
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
      rng = np.random.default_rng([seed, 6, pid, cam, k])
      nz = sample_nuisance(rng, scene.shape, h, w)
      canvas = render_scene(person, scene, nz, h, w)
      path = os.path.join(folder, f"{k + 1:04d}.jpg")
      if spec.infrared:
        Image.fromarray(to_infrared(canvas, spec, nz, rng), "L").save(path, quality=90)
      else:
        Image.fromarray(to_visible(canvas, spec, nz, rng), "RGB").save(path, quality=90)


def regdb_file_name(gender: str, view: str, modality: str, frame: int, pid: int) -> str:
  """RegDB naming, e.g. male_front_v_00007_1.bmp (modality v or t; last field = person id)."""
  return f"{gender}_{view}_{modality}_{frame:05d}_{pid}.bmp"


def _generate_regdb(out: str, num_ids: int, seed: int, lo: int, hi: int, h: int, w: int) -> None:
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


def generate(layout: str, out: str, num_ids: int = 40, seed: int = 0,
             images_per_cam: Sequence[int] | None = None,
             image_size: Sequence[int] = (128, 64)) -> None:
  """Writes a synthetic dataset in the SYSU-MM01 or RegDB layout under `out`.

  Args:
    layout: "sysu" or "regdb".
    out: a new or empty folder.
    num_ids: number of identities (SYSU: split about 60/10/30 train/val/test;
      RegDB: each of the 10 trials splits them in half).
    seed: the same seed gives byte-identical files.
    images_per_cam: (min, max) images per (identity, camera), inclusive;
      default (4, 12) for SYSU and (10, 10) (the real count) for RegDB, where
      it is the number per identity and modality.
    image_size: (height, width) of every image.
  """
  images_per_cam = images_per_cam or DEFAULT_IMAGES_PER_CAM.get(layout, (1, 1))
  lo, hi = _check_args(layout, out, num_ids, images_per_cam, image_size)
  h, w = (int(v) for v in image_size)
  os.makedirs(out, exist_ok=True)
  if layout == "sysu":
    _generate_sysu(out, num_ids, seed, lo, hi, h, w)
  else:
    _generate_regdb(out, num_ids, seed, lo, hi, h, w)


# ----------------------------------------------------------------------------
# Sample sheet.

def _sheet_cells(root: str, layout: str, rows: int):
  """Returns [(row label, [(column label, image path or None), ...]), ...]."""
  out = []
  if layout == "sysu":
    with open(os.path.join(root, "exp", "test_id.txt")) as f:
      test = [int(t) for t in f.read().split(",") if t.strip()]
    with open(os.path.join(root, "exp", "train_id.txt")) as f:
      train = [int(t) for t in f.read().split(",") if t.strip()]
    cols = [(1, 0), (2, 0), (4, 0), (5, 0), (3, 0), (3, 1), (6, 0), (6, 1)]

    def path(pid, cam, k):
      p = os.path.join(root, f"cam{cam}", f"{pid:04d}", f"{k + 1:04d}.jpg")
      return p if os.path.exists(p) else None

    def score(pid):
      return sum(path(pid, c, k) is not None for c, k in cols)

    pids = sorted(train + test, key=lambda p: (-score(p), p))[:rows]
    for pid in sorted(pids):
      out.append((f"id {pid}", [(f"cam{c}" + (" RGB" if c in SYSU_RGB_CAMERAS else " IR"),
                                 path(pid, c, k)) for c, k in cols]))
  else:
    pids = sorted(int(d) for d in os.listdir(os.path.join(root, "Visible")))[:rows]
    for pid in pids:
      vis = sorted(os.listdir(os.path.join(root, "Visible", str(pid))))
      th = sorted(os.listdir(os.path.join(root, "Thermal", str(pid))))
      picks = [0, len(vis) // 3, 2 * len(vis) // 3, len(vis) - 1]
      out.append((f"id {pid}", [("visible", os.path.join(root, "Visible", str(pid), vis[i]))
                                for i in picks] +
                  [("thermal", os.path.join(root, "Thermal", str(pid), th[i])) for i in picks]))
  return out


def sample_sheet(root: str, layout: str, path: str, rows: int = 6) -> None:
  """Writes a PNG grid: one row per identity, visible then infrared columns."""
  cells = _sheet_cells(root, layout, rows)
  first = next(p for _, row in cells for _, p in row if p)
  with Image.open(first) as im:
    cw, ch = im.size
  label_w, head_h, gap = 44, 14, 2
  ncol = len(cells[0][1])
  sheet = Image.new("RGB", (label_w + ncol * (cw + gap), head_h + len(cells) * (ch + gap)),
                    (255, 255, 255))
  draw = ImageDraw.Draw(sheet)
  for j, (name, _) in enumerate(cells[0][1]):
    draw.text((label_w + j * (cw + gap) + 2, 1), name, fill=(0, 0, 0))
  for i, (label, row) in enumerate(cells):
    y = head_h + i * (ch + gap)
    draw.text((2, y + ch // 2 - 5), label, fill=(0, 0, 0))
    for j, (_, p) in enumerate(row):
      x = label_w + j * (cw + gap)
      if p is None:
        draw.rectangle([x, y, x + cw - 1, y + ch - 1], fill=(210, 210, 210))
        draw.text((x + cw // 2 - 8, y + ch // 2 - 5), "n/a", fill=(90, 90, 90))
      else:
        with Image.open(p) as im:
          sheet.paste(im.convert("RGB").resize((cw, ch)), (x, y))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # A 256-colour palette keeps the PNG small enough to commit.
  sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
      path, optimize=True)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--layout", choices=LAYOUTS, required=True)
  parser.add_argument("--out", required=True, help="a new or empty folder")
  parser.add_argument("--num_ids", type=int, default=40)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--images_per_cam", type=int, nargs=2, default=None, metavar=("MIN", "MAX"))
  parser.add_argument("--image_size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
  parser.add_argument("--sample_sheet", default="", help="also write a PNG grid of samples here")
  args = parser.parse_args(argv)
  generate(args.layout, args.out, num_ids=args.num_ids, seed=args.seed,
           images_per_cam=args.images_per_cam, image_size=args.image_size)
  print(f"Wrote a synthetic {args.layout}-layout dataset with {args.num_ids} ids to {args.out}")
  if args.sample_sheet:
    sample_sheet(args.out, args.layout, args.sample_sheet)
    print(f"Wrote the sample sheet {args.sample_sheet}")


if __name__ == "__main__":
  main()
