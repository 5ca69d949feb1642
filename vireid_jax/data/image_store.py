"""Encoded images held in memory, looked up by their record's path.

The pixels of the TFDS source (`data.source=tfds`): records keep the paths of
the original files as keys, and this store hands the input pipeline and the
evaluation the prepared (already resized) encoded image of each key instead of
the file. Plain numpy/PIL: no TensorFlow.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from vireid_jax.data.images import BadImageError, to_rgb


class EncodedImages:
  """PNG/JPEG bytes at one image size, by record path."""

  def __init__(self, image_size: Sequence[int], encoded: Mapping[str, bytes], origin: str):
    """`origin` names where the bytes come from (a TFDS folder), for error messages."""
    self.image_size = tuple(int(s) for s in image_size)
    self._encoded = dict(encoded)
    self.origin = origin

  @classmethod
  def merge(cls, stores: Sequence[EncodedImages]) -> EncodedImages:
    """One store holding the images of all `stores` (of one size and origin)."""
    encoded = {}
    for store in stores:
      encoded.update(store._encoded)  # pylint: disable=protected-access
    return cls(stores[0].image_size, encoded, origin=stores[0].origin)

  def __len__(self) -> int:
    return len(self._encoded)

  def __contains__(self, path: str) -> bool:
    return path in self._encoded

  def encoded(self, paths: Sequence[str]) -> np.ndarray:
    """The encoded bytes of `paths`, as an object array (for tf.data)."""
    out = np.empty(len(paths), dtype=object)
    for i, p in enumerate(paths):
      out[i] = self._get(p)
    return out

  def load(self, path: str, size: Sequence[int]) -> np.ndarray:
    """Decodes the image of `path`: uint8 (H, W, 3), exactly as stored (no resize)."""
    if tuple(int(s) for s in size) != self.image_size:
      raise ValueError(f"Images from {self.origin} are prepared at {self.image_size}, not at "
                       f"{tuple(size)}: prepare the dataset at that size, or use the "
                       "prepared size.")
    try:
      with Image.open(io.BytesIO(self._get(path))) as img:
        img.load()
        return np.asarray(to_rgb(img), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
      raise BadImageError(f"Cannot decode the image of {path!r} in {self.origin} ({e}): "
                          "prepare the dataset again.") from e

  def _get(self, path: str) -> bytes:
    try:
      return self._encoded[path]
    except KeyError:
      raise FileNotFoundError(
          f"{path!r} is not in the prepared records {self.origin}: they were prepared from "
          "another download, or the dataset changed. Prepare them again.") from None
