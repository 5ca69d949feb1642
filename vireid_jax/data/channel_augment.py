"""CAJ's channel augmentations, exactly as its code applies them: drawn on the host, applied on the device.

CAJ (ICCV21_CAJ/data_loader.py, ChannelAug.py) applies them after ToTensor and
Normalize, i.e. to ImageNet-normalised images: an erased rectangle holds fixed
*normalised* values and a copied channel keeps its own normalisation. Our
images stay uint8 until the train step normalises them on the device, so the
pipeline draws each image's operations (a few integers) on the host, from the
image's key, and `apply_ops` applies them right after the normalisation.

Per training image, by view (CAJ's three transforms):
  visible:            random erasing (p = data.random_erasing)
  exchanged visible:  random erasing, then ChannelExchange: one of R, G, B,
                      uniformly, copied into all three channels (always)
  infrared:           random erasing, then (data.channel_augment = p > 0)
                      ChannelAdapGray(p): one of R, G, B or "gray" uniformly;
                      "gray" becomes 0.2989 R + 0.587 G + 0.114 B with
                      probability p, else the image is left alone
Random erasing (ChannelRandomErasing): with probability p, up to 100 attempts
of area U(0.02, 0.4) * H * W and aspect ratio U(0.3, 1/0.3), h = round(
sqrt(area * aspect)), w = round(sqrt(area / aspect)); the first with h < H and
w < W goes at a uniform top-left corner (0..H-h, 0..W-w) and is filled with
ERASE_VALUES per channel (normalised values, CAJ's `mean`).

Only the random generator differs from CAJ's (numpy's, seeded per image from
(seed, step, row) instead of Python's global `random`).

An image's operations are one int32 row (channel, top, left, height, width):
channel NO_CHANNEL_OP, 0/1/2 (copy that channel) or GRAY; height 0: no erasing.
Numpy and jax only (no TensorFlow): the train step imports `apply_ops`.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

ERASE_VALUES = (0.4914, 0.4822, 0.4465)
ERASE_AREA = (0.02, 0.4)
ERASE_MIN_ASPECT = 0.3
ERASE_ATTEMPTS = 100
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)

NO_CHANNEL_OP, GRAY = -1, 3
NUM_FIELDS = 5

# Views of a training step (rows of `step_ops`).
VISIBLE, INFRARED, EXCHANGED = 0, 1, 2

# Mixed into every image's generator seed (the sampler and tf.data use other streams).
_OPS_STREAM = 0xCA7A06


def draw_erase(rng: np.random.Generator, height: int, width: int,
               prob: float) -> tuple[int, int, int, int]:
  """CAJ's ChannelRandomErasing(prob) rectangle (top, left, h, w); h = 0 when nothing is erased."""
  if prob <= 0 or rng.uniform() > prob:
    return 0, 0, 0, 0
  area = height * width
  for _ in range(ERASE_ATTEMPTS):
    target = rng.uniform(*ERASE_AREA) * area
    aspect = rng.uniform(ERASE_MIN_ASPECT, 1.0 / ERASE_MIN_ASPECT)
    h = int(round(math.sqrt(target * aspect)))
    w = int(round(math.sqrt(target / aspect)))
    if w < width and h < height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  return 0, 0, 0, 0


def draw_channel(rng: np.random.Generator, view: int, gray_prob: float) -> int:
  """The channel operation of one image of `view` (see the module docstring)."""
  if view == EXCHANGED:
    return int(rng.integers(0, 3))                 # ChannelExchange(gray=2): R, G or B
  if view == INFRARED and gray_prob > 0:
    choice = int(rng.integers(0, 4))               # ChannelAdapGray
    if choice < 3:
      return choice
    return GRAY if rng.uniform() <= gray_prob else NO_CHANNEL_OP
  return NO_CHANNEL_OP


def image_ops(seed: int, step: int, row: int, view: int, image_size: Sequence[int],
              erase_prob: float, gray_prob: float) -> np.ndarray:
  """The (5,) int32 operations of row `row` of step `step`: a pure function of its arguments."""
  rng = np.random.default_rng([_OPS_STREAM, int(seed), int(step), int(row)])
  top, left, h, w = draw_erase(rng, int(image_size[0]), int(image_size[1]), erase_prob)
  channel = draw_channel(rng, int(view), gray_prob)
  return np.array([channel, top, left, h, w], np.int32)


def step_ops(seed: int, step: int, rows: Sequence[int], views: Sequence[int],
             image_size: Sequence[int], erase_prob: float, gray_prob: float) -> np.ndarray:
  """(len(rows), 5) int32: `image_ops` of the given global rows of a step."""
  out = np.zeros((len(rows), NUM_FIELDS), np.int32)
  for i, (row, view) in enumerate(zip(rows, views)):
    out[i] = image_ops(seed, step, row, view, image_size, erase_prob, gray_prob)
  return out


def apply_ops(images: jax.Array, ops: jax.Array) -> jax.Array:
  """Applies each row's operations to ImageNet-normalised float images (N, H, W, 3).

  Erasing first, then the channel operation, as in CAJ's transforms. Elementwise
  selects only: XLA fuses them into the normalisation.
  """
  x = images.astype(jnp.float32)
  _, height, width, _ = x.shape
  ops = jnp.asarray(ops, jnp.int32)
  channel, top, left, h, w = (ops[:, i, None, None] for i in range(NUM_FIELDS))
  rows = jnp.arange(height)[None, :, None]
  cols = jnp.arange(width)[None, None, :]
  inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
  x = jnp.where(inside[..., None], jnp.asarray(ERASE_VALUES, jnp.float32), x)
  gray = (GRAY_WEIGHTS[0] * x[..., 0] + GRAY_WEIGHTS[1] * x[..., 1]
          + GRAY_WEIGHTS[2] * x[..., 2])
  one = jnp.where(channel == 0, x[..., 0],
                  jnp.where(channel == 1, x[..., 1], jnp.where(channel == 2, x[..., 2], gray)))
  return jnp.where((channel >= 0)[..., None], one[..., None], x)
