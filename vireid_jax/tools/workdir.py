"""Opens a trained workdir for the user tools: its config, model, weights and test data.

A workdir holds everything needed: `config.json` (the run's full config, written
by `training/run_info.py`), `run_info.jsonl` (number of classes, steps per
epoch) and the orbax checkpoints. The tools therefore take only `--workdir`,
never `--config`. No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from vireid_jax import config_defaults
from vireid_jax.data.records import INFRARED, VISIBLE

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.jsonl"


class NotAWorkdirError(FileNotFoundError):
  """The folder is not a finished (or started) training run."""


class UsageError(ValueError):
  """A tool was called with arguments that cannot work; the message says what to change."""


# ---------------------------------------------------------------- config

def _merge(base: ml_collections.ConfigDict, saved: dict, prefix: str = "") -> list[str]:
  """Writes `saved` values into `base` in place; returns the saved keys `base` lacks."""
  unknown = []
  for key, value in saved.items():
    name = f"{prefix}{key}"
    if key not in base:
      unknown.append(name)
      continue
    current = base[key]
    if isinstance(current, ml_collections.ConfigDict):
      if not isinstance(value, dict):
        raise ValueError(f"{name} is a group of keys, but the saved config holds {value!r}.")
      unknown += _merge(current, value, prefix=f"{name}.")
      continue
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(value)            # JSON has no tuples
    elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    base[key] = value
  return unknown


def config_from_json(text: str, source: str = "<json>") -> ml_collections.ConfigDict:
  """The saved config over `base_config()`: keys added since the run keep their defaults."""
  try:
    saved = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{source} is not valid JSON ({e}).") from e
  if not isinstance(saved, dict):
    raise ValueError(f"{source} must hold a JSON object (the run's config).")
  config = config_defaults.base_config()
  try:
    unknown = _merge(config, saved)
  except TypeError as e:
    raise ValueError(f"{source} does not fit this version's config keys ({e}).") from e
  if unknown:
    print(f"note: {source} has keys this version does not know (ignored): "
          f"{', '.join(unknown)}", file=sys.stderr)
  return config


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config the run in `workdir` was trained with."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise NotAWorkdirError(
        f"{workdir!r} has no {CONFIG_FILE}: it is not a training workdir. Train first with "
        "`python -m vireid_jax.main --config=... --workdir=DIR` and pass that DIR.")
  with open(path, encoding="utf-8") as f:
    return config_from_json(f.read(), source=path)


def read_run_info(workdir: str) -> dict:
  """The last record of `run_info.jsonl` ({} when absent)."""
  path = os.path.join(workdir, RUN_INFO_FILE)
  if not os.path.isfile(path):
    return {}
  record = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        record = json.loads(line)
  return record


# ---------------------------------------------------------------- trained model

@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A restored run: what every tool needs to embed images."""
  workdir: str
  config: ml_collections.ConfigDict
  model: Any
  variables: dict          # {"params", "batch_stats"} as host numpy arrays
  step: int
  checkpoint: str          # which checkpoint was restored ("best", "latest" or a step)

  def extractor(self, batch_size: int | None = None) -> Callable[[Sequence[str], int], np.ndarray]:
    """`extract(paths, modality) -> float32 (N, D)`, batched on the local devices."""
    from vireid_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
    return runner.make_test_extractor(self.config, self.model, self.variables,
                                      batch_size=batch_size)


def load_run(workdir: str, checkpoint: str = "best") -> TrainedRun:
  """Restores `workdir`'s `checkpoint` (best | latest | STEP; best falls back to latest)."""
  from vireid_jax.training import parallel, trainer  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(os.path.expanduser(workdir))
  config = read_config(workdir)
  info = read_run_info(workdir)
  num_classes, steps_per_epoch = info.get("num_classes"), info.get("steps_per_epoch")
  if not num_classes or not steps_per_epoch:   # older runs: derive them from the data
    from vireid_jax.data import datasets  # pylint: disable=g-import-not-at-top
    train_set = datasets.load_train_set(config.data, workdir)
    num_classes = train_set.num_classes
    steps_per_epoch = trainer.derive_steps_per_epoch(config, train_set)
  model = trainer.build_model(config, int(num_classes))
  state, step, which = trainer.restore_for_evaluation(
      config, workdir, model, int(steps_per_epoch), checkpoint, parallel.make_mesh())
  return TrainedRun(workdir=workdir, config=config, model=model,
                    variables=trainer.local_variables(state), step=int(step), checkpoint=which)


# ---------------------------------------------------------------- test images

@dataclasses.dataclass(frozen=True)
class ModalityImages:
  """Test images of one modality: paths with their person ids and cameras."""
  paths: tuple[str, ...]
  pids: np.ndarray
  cameras: np.ndarray


def images_by_modality(layout: str, test_set) -> dict[int, ModalityImages]:
  """Every test image of each modality, {VISIBLE: ..., INFRARED: ...}, in dataset order.

  SYSU-MM01: the infrared queries and every visible gallery file (all cameras);
  RegDB: the visible and thermal images of the trial split.
  """
  if layout == "sysu":
    visible = [(p, pid, cam) for (pid, cam), files in sorted(test_set.gallery_files.items())
               for p in files]
    infrared = [(r.path, r.label, r.camera) for r in test_set.query]
  elif layout == "regdb":
    visible = [(r.path, r.label, r.camera) for r in test_set.visible]
    infrared = [(r.path, r.label, r.camera) for r in test_set.thermal]
  else:
    raise ValueError(f"Unknown dataset layout {layout!r}: expected sysu or regdb.")

  def pack(rows):
    return ModalityImages(tuple(r[0] for r in rows), np.array([r[1] for r in rows], np.int64),
                          np.array([r[2] for r in rows], np.int64))
  return {VISIBLE: pack(visible), INFRARED: pack(infrared)}


def evenly_spaced(n: int, count: int) -> np.ndarray:
  """`count` indices spread evenly over range(n) (all of them when count >= n)."""
  if count <= 0 or n <= 0:
    return np.zeros((0,), np.int64)
  if count >= n:
    return np.arange(n)
  return np.unique(np.round(np.linspace(0, n - 1, count)).astype(np.int64))


# ---------------------------------------------------------------- command lines

def run_cli(main_fn: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> int:
  """Runs a tool's `main`; bad input ends with its message and exit status 1, no traceback."""
  from vireid_jax.data.images import BadImageError  # pylint: disable=g-import-not-at-top
  try:
    main_fn(argv)
  except (FileNotFoundError, BadImageError, UsageError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 1
  return 0
