"""Results as a text table and as a JSON file (written atomically)."""

from __future__ import annotations

import json
import os
import tempfile

from vireid_jax.evaluation.protocols import METRIC_KEYS

_HEADERS = {"rank1": "Rank-1", "rank10": "Rank-10", "rank20": "Rank-20", "mAP": "mAP",
            "mINP": "mINP"}


def _protocols(results: dict) -> list[str]:
  return [k for k, v in results.items() if isinstance(v, dict) and "rank1" in v]


def format_table(results: dict, dataset: str) -> str:
  """A Markdown table: one row per protocol, percentages as mean ± std over trials."""
  names = _protocols(results)
  if not names:
    raise ValueError(f"No protocol results to format for {dataset!r}: expected entries like "
                     "{'all_single': {'rank1': ..., ...}}.")
  lines = [f"{dataset} results (%, mean ± std over trials)", "",
           "| protocol | trials | " + " | ".join(_HEADERS[k] for k in METRIC_KEYS) + " |",
           "|---|---:|" + "---:|" * len(METRIC_KEYS)]
  for name in names:
    r = results[name]
    std = r.get("std", {})
    cells = [f"{r[k]:.2f} ± {std.get(k, 0.0):.2f}" for k in METRIC_KEYS]
    lines.append(f"| {name} | {r.get('trials', 1)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_results_json(path: str, dataset: str, results: dict) -> None:
  """Writes {"dataset": ..., "<protocol>": {metrics, "std", "trials"}} atomically."""
  payload = {"dataset": dataset}
  for name in _protocols(results):
    r = results[name]
    payload[name] = {k: float(r[k]) for k in METRIC_KEYS}
    payload[name]["std"] = {k: float(r.get("std", {}).get(k, 0.0)) for k in METRIC_KEYS}
    payload[name]["trials"] = int(r.get("trials", 1))
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".results_", suffix=".json.tmp", dir=folder)
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(payload, f, indent=2)
      f.write("\n")
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
