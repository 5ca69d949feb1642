"""Writes what is needed to reproduce a run into its workdir (seed, config, versions, git)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

import jax
from absl import logging

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


def write(workdir: str, config, extra: dict | None = None) -> None:
  """Writes WORKDIR/config.json and appends a record to WORKDIR/run_info.jsonl.

  A restart with a different config (other than `mode`) is allowed but logged,
  and the changed keys are recorded, so a resumed run stays reproducible.
  """
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  config_path = os.path.join(workdir, "config.json")
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  changed = []
  if os.path.exists(config_path):
    try:
      with open(config_path) as f:
        changed = [k for k in changed_keys(json.load(f), json.loads(text)) if k != "mode"]
    except (OSError, ValueError):
      changed = ["(previous config.json unreadable)"]
    if changed:
      logging.warning("%s was written by an earlier start with other values of %s; "
                      "now using this run's config.", config_path, ", ".join(changed))
  with open(config_path, "w") as f:
    f.write(text)
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
  with open(os.path.join(workdir, "run_info.jsonl"), "a") as f:
    f.write(json.dumps(info) + "\n")
