"""The network's input: uint8 images normalised on the device.

Images travel from the host as uint8 (4x fewer bytes than float32) and are
normalised here with the same float32 operations as `data.images.normalize`,
for training (`train_step`) and evaluation (`evaluation.features`) alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vireid_jax.data.images import IMAGENET_MEAN, IMAGENET_STD


def normalize(images: jax.Array) -> jax.Array:
  """uint8 (or float) RGB in 0..255 -> float32 ImageNet-normalised."""
  return (images.astype(jnp.float32) - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
