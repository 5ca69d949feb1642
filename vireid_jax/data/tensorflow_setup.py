"""TensorFlow quietly and on the CPU only: it serves tf.data, TFDS and summaries; JAX owns
the accelerators. The one place that decides how TensorFlow is imported.

Nothing here imports TensorFlow at module load, so the model, the losses and the train
step (which import neither) stay free of it.
"""

from __future__ import annotations

import functools
import os


def quiet_tensorflow() -> None:
  """Silences TF's C++ logging and oneDNN notice; must run before TensorFlow is imported."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@functools.lru_cache(maxsize=None)
def import_tf():
  """Imports TensorFlow quietly, with every GPU hidden from it."""
  quiet_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:   # devices already initialised: they were hidden before
    pass
  return tf
