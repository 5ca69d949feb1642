"""Draws one person on a canvas: pose, view and the shapes of body, clothes and gear."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vireid_jax.data.render.canvas import Canvas
from vireid_jax.data.render.identity import Paint, Person


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


def draw_person(cv: Canvas, p: Person, pose: Pose) -> None:
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
