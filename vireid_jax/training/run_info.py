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


def write(workdir: str, config, extra: dict | None = None) -> None:
  """Writes WORKDIR/config.json and appends a record to WORKDIR/run_info.jsonl."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
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
  }
  info.update(extra or {})
  with open(os.path.join(workdir, "run_info.jsonl"), "a") as f:
    f.write(json.dumps(info) + "\n")
