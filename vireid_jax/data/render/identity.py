"""Identities: the fixed appearance of one synthetic person, drawn from a seed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vireid_jax.data.render.palettes import (BOTTOM_COLORS, GEAR_COLORS, HAIR_COLORS,
                                                PATTERN_PROBS, PATTERNS, SKIN_COLORS, TOP_COLORS,
                                                TOP_MATERIALS, TROUSER_MATERIALS, luma,
                                                pick_color)


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


def sample_pattern(rng: np.random.Generator, base_rgb, kind: str) -> Pattern | None:
  if kind == "solid":
    return None
  for _ in range(20):   # a second colour that visibly differs from the base
    rgb2 = pick_color(rng, TOP_COLORS, 0.03) if rng.random() < 0.6 else (
        (0.93, 0.93, 0.91) if luma(base_rgb) < 0.5 else (0.08, 0.08, 0.09))
    if abs(luma(rgb2) - luma(base_rgb)) > 0.18 or np.abs(np.subtract(rgb2, base_rgb)).sum() > 0.6:
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
  skin = Paint(pick_color(rng, SKIN_COLORS, 0.02), float(u(0.84, 0.93)))
  hair_style = str(rng.choice(["short", "long", "bald"], p=[0.25, 0.75, 0.0] if female
                              else [0.8, 0.1, 0.1]))
  hair = Paint(pick_color(rng, HAIR_COLORS, 0.02), float(u(0.50, 0.62)))

  material = str(rng.choice(list(TOP_MATERIALS)))
  top_rgb = pick_color(rng, TOP_COLORS)
  top_pattern = sample_pattern(rng, top_rgb, str(rng.choice(PATTERNS, p=PATTERN_PROBS)))
  top = Paint(top_rgb, TOP_MATERIALS[material] + float(rng.normal(0, 0.025)), top_pattern)
  sleeves = "long" if material in ("knit", "coat") else str(rng.choice(["long", "short"]))
  top_length = float(u(0.08, 0.16) if material == "coat" else u(0.0, 0.04))

  bottom_style = str(rng.choice(["trousers", "skirt", "shorts"], p=[0.55, 0.3, 0.15] if female
                                else [0.8, 0.0, 0.2]))
  bottom_rgb = pick_color(rng, BOTTOM_COLORS, 0.03)
  bottom_ir = (TROUSER_MATERIALS[str(rng.choice(list(TROUSER_MATERIALS)))]
               if bottom_style == "trousers" else float(u(0.52, 0.62)))
  bottom_kind = str(rng.choice(["solid", "checks", "vstripes", "hstripes"],
                               p=[0.76, 0.1, 0.07, 0.07]))
  bottom = Paint(bottom_rgb, bottom_ir + float(rng.normal(0, 0.02)),
                 sample_pattern(rng, bottom_rgb, bottom_kind))
  shoes = Paint(pick_color(rng, GEAR_COLORS, 0.02), float(u(0.30, 0.40)))

  hat = backpack = bag = None
  if rng.random() < 0.2:
    hat = Paint(pick_color(rng, GEAR_COLORS, 0.03), float(u(0.40, 0.50)))
  hat_style = str(rng.choice(["cap", "beanie"]))
  if rng.random() < 0.3:
    backpack = Paint(pick_color(rng, GEAR_COLORS, 0.03), float(u(0.24, 0.34)))
  backpack_size = (float(u(0.19, 0.28)), float(u(0.65, 0.95)))
  if rng.random() < 0.28:
    bag = Paint(pick_color(rng, GEAR_COLORS, 0.03), float(u(0.26, 0.36)))
  bag_side = int(rng.choice([-1, 1]))
  # Garment structure: seen in both modalities (its parts differ in colour and in warmth).
  inner = belt = scarf = leg_stripe = None
  if material in ("coat", "knit", "synthetic") and rng.random() < 0.45:
    inner_rgb = pick_color(rng, TOP_COLORS)
    inner = Paint(inner_rgb, float(u(0.58, 0.76)),
                  sample_pattern(rng, inner_rgb, "hstripes") if rng.random() < 0.3 else None)
  inner_width = float(u(0.25, 0.5))
  if rng.random() < 0.25:
    belt = Paint(pick_color(rng, GEAR_COLORS, 0.02), float(u(0.28, 0.36)))
  if rng.random() < 0.15:
    scarf = Paint(pick_color(rng, TOP_COLORS), float(u(0.45, 0.6)))
  boots = bool(rng.random() < 0.25)
  if bottom_style == "trousers" and rng.random() < 0.15:
    leg_stripe = Paint(pick_color(rng, TOP_COLORS),
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
