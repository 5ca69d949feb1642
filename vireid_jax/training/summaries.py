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
import os
import time
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging
from PIL import Image


def drop_partial_last_line(path: str) -> None:
  """Cuts a row left half-written by a killed run, so appended rows stay valid JSON lines.

  After a resume, steps past the restored checkpoint appear twice; the later row wins.
  """
  if not os.path.exists(path):
    return
  with open(path, "rb+") as f:
    end = f.seek(0, os.SEEK_END)
    if end == 0:
      return
    f.seek(end - 1)
    if f.read(1) == b"\n":
      return
    cut, pos = 0, end
    while pos > 0:   # the last newline, reading backwards in blocks
      start = max(0, pos - 65536)
      f.seek(start)
      i = f.read(pos - start).rfind(b"\n")
      if i >= 0:
        cut = start + i + 1
        break
      pos = start
    logging.warning("%s: dropping a half-written last row (%d bytes) left by a killed run.",
                    path, end - cut)
    f.truncate(cut)


class JsonlWriter:
  """Appends one JSON object per `write_scalars` to WORKDIR/metrics.jsonl.

  Has the methods of CLU's `MetricWriter` that the trainer uses, so CLU's
  `MultiWriter` drives it beside TensorBoard's writer. With `image_dir` (used
  when TensorBoard is unavailable) images are saved there as PNG files,
  `TAG_STEP.png` (`TAG_STEP_I.png` for several per write).
  """

  def __init__(self, path: str, image_dir: str | None = None):
    self.path = path
    self.image_dir = image_dir
    drop_partial_last_line(path)
    self._f = open(path, "a", encoding="utf-8")

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    row = {"step": int(step), "time": time.time()}
    row.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._f.write(json.dumps(row) + "\n")
    self._f.flush()   # whole rows on disk: a killed run loses no logged step

  def write_images(self, step, images):
    if not self.image_dir:
      return
    os.makedirs(self.image_dir, exist_ok=True)
    for tag, batch in images.items():
      batch = np.asarray(batch)
      if batch.ndim == 3:
        batch = batch[None]
      if batch.dtype != np.uint8:    # floats in [0, 1], as TensorBoard takes them
        batch = (np.clip(batch, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
      name = tag.replace("/", "_")
      for i, img in enumerate(batch):
        suffix = f"_{i}" if len(batch) > 1 else ""
        Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(
            os.path.join(self.image_dir, f"{name}_{int(step)}{suffix}.png"))

  def write_texts(self, step, texts):
    del step, texts

  def write_hparams(self, hparams):
    del hparams

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()


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


def create_writer(workdir: str, tensorboard: bool = True):
  """TensorBoard (CLU) + metrics.jsonl in `workdir`; only process 0 writes files.

  Without TensorBoard (`tensorboard=False`, or CLU/TensorFlow not installed)
  images go to WORKDIR/images/ as PNG files.
  """
  if jax.process_index() != 0:
    return NullWriter()
  os.makedirs(workdir, exist_ok=True)
  jsonl = JsonlWriter(os.path.join(workdir, "metrics.jsonl"))
  try:
    if not tensorboard:
      raise ImportError("tensorboard=False")
    # CLU's writers import TensorFlow: kept out of the model and the step, imported here.
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if tensorboard:
      logging.warning("CLU/TensorFlow unavailable (%s): no TensorBoard summaries; "
                      "metrics.jsonl and images/ only.", e)
    jsonl.image_dir = os.path.join(workdir, "images")
    return jsonl
  return metric_writers.MultiWriter([jsonl, metric_writers.SummaryWriter(workdir)])
