"""Metric summaries: CLU writers (TensorBoard) plus a plain JSON-lines log.

CLU's writers import TensorFlow, which some machines (the GPU benchmark host)
lack; there the JSON-lines log, PNG files for images (WORKDIR/images/) and the
console still work. `metrics.jsonl` in the workdir is also the easiest thing to
parse in a notebook.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging


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
  """Appends one JSON object per write to WORKDIR/metrics.jsonl.

  With `image_dir` (used when TensorBoard is unavailable) images are saved
  there as PNG files, `TAG_STEP.png` (`TAG_STEP_I.png` for several per write).
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
    from PIL import Image  # pylint: disable=g-import-not-at-top
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

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()


class MultiWriter:
  def __init__(self, writers):
    self.writers = list(writers)

  def __getattr__(self, name):
    def call(*args, **kwargs):
      for w in self.writers:
        getattr(w, name)(*args, **kwargs)
    return call


def create_writer(workdir: str, use_clu: bool = True):
  """CLU default writer (TensorBoard + logging) + JSONL; only process 0 writes files."""
  if jax.process_index() != 0:
    return MultiWriter([])
  os.makedirs(workdir, exist_ok=True)
  jsonl = JsonlWriter(os.path.join(workdir, "metrics.jsonl"))
  writers = [jsonl]
  if use_clu:
    try:
      from clu import metric_writers  # pylint: disable=g-import-not-at-top
      writers.append(metric_writers.create_default_writer(
          workdir, just_logging=False, asynchronous=True))
    except ImportError as e:
      logging.warning("CLU/TensorFlow unavailable (%s): TensorBoard summaries off, "
                      "metrics.jsonl and images/ only.", e)
  if len(writers) == 1:    # no TensorBoard: images go to WORKDIR/images/ as PNG files
    jsonl.image_dir = os.path.join(workdir, "images")
  return MultiWriter(writers)


def progress_hooks(workdir: str, writer, total_steps: int, every_steps: int,
                   profile_steps: int = 0) -> list:
  """CLU's ReportProgress (steps/s, ETA) and, optionally, a profiler hook."""
  try:
    from clu import periodic_actions  # pylint: disable=g-import-not-at-top
  except ImportError:
    return []
  hooks = []
  if jax.process_index() == 0:
    clu_writers = [w for w in getattr(writer, "writers", []) if not isinstance(w, JsonlWriter)]
    hooks.append(periodic_actions.ReportProgress(
        num_train_steps=total_steps, every_steps=every_steps,
        writer=clu_writers[0] if clu_writers else None))
    if profile_steps:
      hooks.append(periodic_actions.Profile(
          num_profile_steps=profile_steps, logdir=workdir, first_profile=10,
          every_secs=None, every_steps=None))
  return hooks
