"""Metric summaries: CLU writers (TensorBoard) plus a plain JSON-lines log.

CLU's writers import TensorFlow, which some machines (the GPU benchmark host)
lack; there the JSON-lines log and the console still work. `metrics.jsonl` in
the workdir is also the easiest thing to parse in a notebook.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging


class JsonlWriter:
  """Appends one JSON object per write to WORKDIR/metrics.jsonl."""

  def __init__(self, path: str):
    self.path = path
    self._f = open(path, "a", encoding="utf-8")

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    row = {"step": int(step), "time": time.time()}
    row.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._f.write(json.dumps(row) + "\n")

  def write_images(self, step, images):
    del step, images

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
  writers = [JsonlWriter(os.path.join(workdir, "metrics.jsonl"))]
  if use_clu:
    try:
      from clu import metric_writers  # pylint: disable=g-import-not-at-top
      writers.append(metric_writers.create_default_writer(
          workdir, just_logging=False, asynchronous=True))
    except ImportError as e:
      logging.warning("CLU/TensorFlow unavailable (%s): TensorBoard summaries off, "
                      "metrics.jsonl only.", e)
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
