"""Image decoding without TensorFlow: any file PIL reads -> uint8 RGB, fixed size.

Used by evaluation and tools (which must run where TensorFlow is absent). Real
SYSU-MM01 infrared images and RegDB thermal images may be single-channel; they
come out with three identical channels. 16-bit greys are stretched by their maximum,
transparent pixels laid over black; the tf.data reader (pipeline.decode) gives the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, UnidentifiedImageError

from vireid_jax.errors import DataError

# ImageNet statistics, in 0..255 units, RGB order.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


class BadImageError(DataError, ValueError):
  """An image file that cannot be decoded (truncated, empty, not an image)."""


def to_rgb(img: Image.Image) -> Image.Image:
  """Converts any PIL mode (L, I;16, I, F, RGBA, P, ...) to 8-bit RGB."""
  if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
    arr = np.asarray(img, dtype=np.float64)
    hi = arr.max() if arr.size else 0.0
    scale = 255.0 / hi if hi > 255.0 else 1.0
    img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
  if img.mode == "RGBA" or img.mode == "LA" or (img.mode == "P" and "transparency" in img.info):
    img = img.convert("RGBA")
    background = Image.new("RGBA", img.size, (0, 0, 0, 255))
    img = Image.alpha_composite(background, img)
  return img.convert("RGB")


def load_image(path: str, size: tuple[int, int] | None = None) -> np.ndarray:
  """Reads `path` as uint8 (H, W, 3); resizes to size=(height, width) if given (LANCZOS).

  Raises:
    BadImageError: naming the file, if it is empty, truncated or not an image.
  """
  try:
    with Image.open(path) as img:
      img.load()
      img = to_rgb(img)
  except FileNotFoundError:
    raise
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise BadImageError(
        f"Cannot decode image {path!r} ({type(e).__name__}: {e}). The file is "
        "empty, truncated or not an image: re-copy it from the dataset "
        "archive, or delete it and run `python -m vireid_jax.data.check`.") from e
  if size is not None and (img.height, img.width) != tuple(size):
    # PIL's LANCZOS (formerly ANTIALIAS), as AGW / CAJ resize every image.
    img = img.resize((size[1], size[0]), Image.LANCZOS)
  return np.asarray(img, dtype=np.uint8)


def load_images(paths, size: tuple[int, int]) -> np.ndarray:
  """Stacks `load_image` over paths into uint8 (N, H, W, 3)."""
  out = np.empty((len(paths), size[0], size[1], 3), np.uint8)
  for i, p in enumerate(paths):
    out[i] = load_image(p, size)
  return out


def normalize(images: np.ndarray) -> np.ndarray:
  """uint8/float (..., 3) RGB -> float32 ImageNet-normalised."""
  return (np.asarray(images, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
