"""What a workdir records about its run: the config, and each start's seed, versions, git.

`config.json` holds the config of the latest start; `run_info.jsonl` one line
per start (seed, command line, versions, git revision, devices, and the config
keys that changed since the previous start). Evaluating a finished run, and
the user tools, read the config back from here, so they need no `--config`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

import jax
import ml_collections
from absl import logging

from vireid_jax import config_defaults, fileio
from vireid_jax.errors import UserError

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.jsonl"


class NotAWorkdirError(UserError, FileNotFoundError):
  """The folder holds no training run (no config.json)."""

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections",
            "clu", "tensorflow", "tensorflow-cpu", "tensorflow-datasets", "vireid_jax")


def package_versions() -> dict[str, str]:
  out = {}
  for name in PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def git_revision(path: str | None = None) -> str:
  path = path or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return rev + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def flatten(tree: dict, prefix: str = "") -> dict:
  """{"optim.lr_new": 0.1, ...} from a nested dict."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def changed_keys(old: dict, new: dict) -> list[str]:
  """Dotted keys whose values differ between two (nested) config dicts."""
  a, b = flatten(old), flatten(new)
  return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def write(workdir: fileio.PathLike, config, extra: dict | None = None) -> None:
  """Writes WORKDIR/config.json and appends a record to WORKDIR/run_info.jsonl.

  A restart with a different config (other than `mode`) is allowed but logged,
  and the changed keys are recorded, so a resumed run stays reproducible.
  """
  if jax.process_index() != 0:
    return
  workdir = fileio.as_path(workdir)
  config_path = workdir / CONFIG_FILE
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  changed = []
  previous = fileio.read_text(config_path)
  if previous is not None:
    try:
      changed = [k for k in changed_keys(json.loads(previous), json.loads(text)) if k != "mode"]
    except ValueError:
      changed = ["(previous config.json unreadable)"]
    if changed:
      logging.warning("%s was written by an earlier start with other values of %s; "
                      "now using this run's config.", config_path, ", ".join(changed))
  fileio.write_text_atomic(config_path, text)
  info = {
      "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "seed": int(config.seed),
      "argv": sys.argv,
      "python": platform.python_version(),
      "platform": platform.platform(),
      "devices": [str(d) for d in jax.devices()],
      "process_count": jax.process_count(),
      "git": git_revision(),
      "packages": package_versions(),
      "config_changed": changed,
  }
  info.update(extra or {})
  fileio.append_line(workdir / RUN_INFO_FILE, json.dumps(info))


# ---------------------------------------------------------------- reading back

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
    raise UserError(f"{source} is not valid JSON ({e}): restore it from the run's first "
                    "start, or train again in a new --workdir.") from e
  if not isinstance(saved, dict):
    raise UserError(f"{source} must hold a JSON object (the run's config).")
  config = config_defaults.base_config()
  try:
    unknown = _merge(config, saved)
  except (TypeError, ValueError) as e:
    raise UserError(f"{source} does not fit this version's config keys ({e}).") from e
  if unknown:
    logging.warning("%s has keys this version does not know (ignored): %s", source,
                    ", ".join(unknown))
  return config


def read_config(workdir: fileio.PathLike) -> ml_collections.ConfigDict:
  """The config the run in `workdir` was (last) started with."""
  path = fileio.as_path(workdir) / CONFIG_FILE
  text = fileio.read_text(path)
  if text is None:
    raise NotAWorkdirError(
        f"{str(workdir)!r} has no {CONFIG_FILE}: it is not a training workdir. Train first "
        "with `python -m vireid_jax.main --config=... --workdir=DIR` and pass that DIR.")
  return config_from_json(text, source=str(path))


def read_last_record(workdir: fileio.PathLike) -> dict:
  """The last record of `run_info.jsonl` ({} when absent)."""
  text = fileio.read_text(fileio.as_path(workdir) / RUN_INFO_FILE) or ""
  record = {}
  for line in text.splitlines():
    if line.strip():
      try:
        record = json.loads(line)
      except json.JSONDecodeError:   # a line cut short by a killed start
        continue
  return record
