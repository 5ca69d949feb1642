"""TFDS builders for SYSU-MM01 and RegDB, read from the user's manual download.

Importing a builder module registers it with TFDS:

    import tensorflow_datasets as tfds
    from vireid_jax.data.tfds_builders import sysu_mm01  # registers "sysu_mm01"
    builder = tfds.builder("sysu_mm01", data_dir=DATA_DIR)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=ROOT))

(`regdb` likewise, with configs "regdb/trial1" ... "regdb/trial10".) Both read
through the numpy readers in `vireid_jax.data.sysu` / `.regdb`, so the splits,
orderings and labels are exactly those of the rest of the code. Fully offline.

This package module holds what both builders share; it imports no TensorFlow.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from vireid_jax.data import images


def quiet_tensorflow() -> None:
  """Silences TF's C++ logging; must run before TensorFlow is first imported."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def image_bytes(path: str) -> bytes:
  """Encoded bytes of a 3-channel version of the image at `path`.

  An RGB JPEG is stored as it is (no re-encoding loss); anything else (single
  channel infrared JPEGs, BMPs, 16-bit PNGs) is converted to RGB and stored as
  a lossless PNG, so every stored image decodes to 3 channels.
  """
  with open(path, "rb") as f:
    data = f.read()
  try:
    with Image.open(io.BytesIO(data)) as img:
      if img.format == "JPEG" and img.mode == "RGB":
        return data
  except Exception:  # pylint: disable=broad-except
    pass  # load_image below raises BadImageError naming the file.
  buf = io.BytesIO()
  Image.fromarray(images.load_image(path), "RGB").save(buf, format="PNG")
  return buf.getvalue()


def relative(root: str, path: str) -> str:
  """The path as written relative to ROOT (the example's file_name feature)."""
  return os.path.relpath(path, root).replace(os.sep, "/")


def record_features():
  """The feature spec both builders share (imports TensorFlow Datasets lazily)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from vireid_jax.data.records import MODALITY_NAMES  # pylint: disable=g-import-not-at-top
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "label": tfds.features.Scalar(dtype=np.int64),
      "person_id": tfds.features.Scalar(dtype=np.int64),
      "camera": tfds.features.Scalar(dtype=np.int64),
      "modality": tfds.features.ClassLabel(names=[MODALITY_NAMES[0], MODALITY_NAMES[1]]),
      "file_name": tfds.features.Text(),
  })
