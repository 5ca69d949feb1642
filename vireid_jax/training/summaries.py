"""Metric summaries: TensorBoard (CLU's writer) plus a plain JSON-lines log.

`create_writer` combines both with CLU's `MultiWriter`. CLU's writers import
TensorFlow, which some machines (a GPU host set up for JAX only) lack; there
the JSON-lines log, PNG files for images (WORKDIR/images/) and the console
still work. `metrics.jsonl` in the workdir is also the easiest thing to parse
in a notebook. Nothing here prints to the console: the trainer's one progress
line per log step does.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging
from PIL import Image

from vireid_jax import fileio


class JsonlWriter:
  """Appends one JSON object per `write_scalars` to WORKDIR/metrics.jsonl.

  Has the methods of CLU's `MetricWriter` that the trainer uses, so CLU's
  `MultiWriter` drives it beside TensorBoard's writer. With `image_dir` (used
  when TensorBoard is unavailable) images are saved there as PNG files,
  `TAG_STEP.png` (`TAG_STEP_I.png` for several per write).
  """

  def __init__(self, path: fileio.PathLike, image_dir: fileio.PathLike | None = None):
    self.path = fileio.as_path(path)
    self.image_dir = image_dir
    self._log = fileio.LineLog(self.path)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    row = {"step": int(step), "time": time.time()}
    row.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._log.append(json.dumps(row))   # whole rows on storage: a killed run loses no logged step

  def write_images(self, step, images):
    if not self.image_dir:
      return
    folder = fileio.as_path(self.image_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for tag, batch in images.items():
      batch = np.asarray(batch)
      if batch.ndim == 3:
        batch = batch[None]
      if batch.dtype != np.uint8:    # floats in [0, 1], as TensorBoard takes them
        batch = (np.clip(batch, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
      name = tag.replace("/", "_")
      for i, img in enumerate(batch):
        suffix = f"_{i}" if len(batch) > 1 else ""
        with (folder / f"{name}_{int(step)}{suffix}.png").open("wb") as f:
          Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(f, format="PNG")

  def write_texts(self, step, texts):
    del step, texts

  def write_hparams(self, hparams):
    del hparams

  def flush(self):
    pass           # every row is on storage once written

  def close(self):
    self._log.close()


class NullWriter:
  """The writer of processes other than 0: every write is dropped."""

  def __getattr__(self, name):
    return lambda *args, **kwargs: None


def flat_hparams(config) -> dict[str, Any]:
  """The config as TensorBoard hyperparameters: dotted keys, scalars and strings."""
  out = {}

  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, Mapping):
        walk(v, f"{prefix}{k}.")
      else:
        out[f"{prefix}{k}"] = v if isinstance(v, (bool, int, float, str)) else str(v)
  walk(config.to_dict(), "")
  return out


def create_writer(workdir: fileio.PathLike, tensorboard: bool = True):
  """TensorBoard (CLU) + metrics.jsonl in `workdir` (a folder or a URL); only process 0 writes.

  Without TensorBoard (`tensorboard=False`, or CLU/TensorFlow not installed)
  images go to WORKDIR/images/ as PNG files.
  """
  if jax.process_index() != 0:
    return NullWriter()
  workdir = fileio.as_path(workdir)
  jsonl = JsonlWriter(workdir / "metrics.jsonl")
  try:
    if not tensorboard:
      raise ImportError("tensorboard=False")
    # CLU's writers import TensorFlow: kept out of the model and the step, imported here.
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if tensorboard:
      logging.warning("CLU/TensorFlow unavailable (%s): no TensorBoard summaries; "
                      "metrics.jsonl and images/ only.", e)
    jsonl.image_dir = workdir / "images"
    return jsonl
  # TensorFlow's event writer reads URLs (gs://...) itself.
  return metric_writers.MultiWriter([jsonl, metric_writers.SummaryWriter(str(workdir))])
