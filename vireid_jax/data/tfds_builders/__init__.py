"""TFDS records of a dataset: the user's manual download, resized once.

Prepare with `python -m vireid_jax.data.prepare_tfds` (see there); train and
evaluate from the result with `--config.data.source=tfds`. Fully offline.

`builder.py` makes each dataset's builder from its module's `TfdsLayout`;
this module holds what the builders and the reader share, without importing
TensorFlow. Each prepared dataset is one builder config per image size and
encoding (and per split, for datasets with numbered splits):
`sysu_mm01/288x144_jpeg`, `regdb/trial1_288x144_png`.
Every image is stored at that size, resized exactly as the raw-file path
resizes it: training images with the tf.data resize of the input pipeline,
test images with the PIL resize of the evaluation. JPEG (the default: quality
95, no chroma subsampling) decodes fast and differs from the files' pixels by
JPEG's rounding only; PNG is lossless, so the TFDS path gives the very same
pixels, batches and features as reading the files, but is 2-3x larger and
slower to decode (BENCHMARKS.md, "Input pipeline").

The builders read through the dataset's own readers, so the splits,
orderings and labels are those of the rest of the code. Each example keeps its file's path relative to the download (`file_name`)
and its position in the reader's list (`index`): TFDS stores examples in its
own order, `index` restores the reader's. `info.metadata` records the download
folder (so records keep their original paths as keys), the image size and
encoding, and the generator's settings when the download is a synthetic dataset.
"""

from __future__ import annotations

import io
import os
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from vireid_jax.data import images
from vireid_jax.data.records import MODALITY_NAMES, ImageRecord
from vireid_jax.data.synthetic import marker as synthetic_marker

ENCODINGS = ("png", "jpeg")      # a data_dir holding both: the lossless one is read
DEFAULT_ENCODING = "jpeg"
JPEG_QUALITY = 95
DEFAULT_IMAGE_SIZE = (288, 144)
VERSION = "2.0.0"
# Images resized per chunk while preparing (bounds the memory of the decoded chunk).
_CHUNK = 256


def config_name(image_size: Sequence[int], encoding: str = DEFAULT_ENCODING,
                trial: int | None = None) -> str:
  """The builder config name of a prepared size: "288x144_jpeg", "trial1_288x144_png", ..."""
  if encoding not in ENCODINGS:
    raise ValueError(f"encoding={encoding!r}: use one of {ENCODINGS}.")
  height, width = (int(s) for s in image_size)
  name = f"{height}x{width}_{encoding}"
  return name if trial is None else f"trial{int(trial)}_{name}"


def relative(root: str, path: str) -> str:
  """The path as written relative to ROOT (the example's file_name feature)."""
  return os.path.relpath(path, root).replace(os.sep, "/")


def encode(pixels: np.ndarray, encoding: str) -> bytes:
  """uint8 (H, W, 3) -> PNG (lossless) or JPEG bytes."""
  buf = io.BytesIO()
  img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
  if encoding == "png":
    img.save(buf, format="PNG")
  else:
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
  return buf.getvalue()


def resized(paths: Sequence[str], image_size: Sequence[int],
            for_training: bool) -> Iterator[np.ndarray]:
  """uint8 (H, W, 3) per path, resized as the consumer of that split resizes.

  for_training: the input pipeline's TF decode-and-resize (in chunks, in
  parallel); else the evaluation's PIL `images.load_image`.
  """
  if not for_training:
    for p in paths:
      yield images.load_image(p, tuple(image_size))
    return
  # TensorFlow, only when preparing. pylint: disable-next=g-import-not-at-top
  from vireid_jax.data import pipeline
  for start in range(0, len(paths), _CHUNK):
    yield from pipeline.decode_files(paths[start:start + _CHUNK], image_size)


def record_features(image_size: Sequence[int], encoding: str):
  """The feature spec both builders share (imports TensorFlow Datasets lazily)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  height, width = (int(s) for s in image_size)
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(height, width, 3), encoding_format=encoding),
      "label": tfds.features.Scalar(dtype=np.int64),
      "person_id": tfds.features.Scalar(dtype=np.int64),
      "camera": tfds.features.Scalar(dtype=np.int64),
      "modality": tfds.features.ClassLabel(names=[MODALITY_NAMES[0], MODALITY_NAMES[1]]),
      "file_name": tfds.features.Text(),
      "index": tfds.features.Scalar(dtype=np.int64),
  })


def describe_download(root: str, config, layout: str, **extra) -> dict:
  """The `info.metadata` of a prepared dataset (JSON)."""
  return {"layout": layout, "manual_dir": root, "image_size": list(config.image_size),
          "encoding": config.encoding, "synthetic": synthetic_marker.read_marker(root), **extra}


def examples(root: str, records: Sequence[ImageRecord], person_ids: Sequence[int],
             config, for_training: bool):
  """(key, example) for each record, in the reader's order (`index`)."""
  paths = [r.path for r in records]
  for i, (r, pid, pixels) in enumerate(zip(records, person_ids,
                                           resized(paths, config.image_size, for_training))):
    name = relative(root, r.path)
    yield name, {
        "image": encode(pixels, config.encoding),
        "label": r.label,
        "person_id": pid,
        "camera": r.camera,
        "modality": r.modality,
        "file_name": name,
        "index": i,
    }
