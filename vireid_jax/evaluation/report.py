"""Results as a text table and as a JSON file (written atomically)."""

from __future__ import annotations

import json
import os
import tempfile

from vireid_jax.evaluation.protocols import METRIC_KEYS

_HEADERS = {"rank1": "Rank-1", "rank10": "Rank-10", "rank20": "Rank-20", "mAP": "mAP",
            "mINP": "mINP"}


def protocol_names(results: dict) -> list[str]:
  """Keys of `results` that hold one protocol's metrics (not "dataset", "settings", ...)."""
  return [k for k, v in results.items() if isinstance(v, dict) and "rank1" in v]


def format_table(results: dict, dataset: str, over: str = "trials") -> str:
  """A Markdown table: one row per protocol, percentages as mean ± std over `over`."""
  names = protocol_names(results)
  if not names:
    raise ValueError(f"No protocol results to format for {dataset!r}: expected entries like "
                     "{'all_single': {'rank1': ..., ...}}.")
  lines = [f"{dataset} results (%, mean ± std over {over})", "",
           f"| protocol | {over} | " + " | ".join(_HEADERS[k] for k in METRIC_KEYS) + " |",
           "|---|---:|" + "---:|" * len(METRIC_KEYS)]
  for name in names:
    r = results[name]
    std = r.get("std", {})
    cells = [f"{r[k]:.2f} ± {std.get(k, 0.0):.2f}" for k in METRIC_KEYS]
    lines.append(f"| {name} | {r.get('trials', 1)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def evaluation_settings(eval_cfg, checkpoint: str, step: int) -> dict:
  """What decides the numbers besides the weights: stored with them in the results file."""
  return {"checkpoint": str(checkpoint), "step": int(step), "rerank": bool(eval_cfg.rerank),
          "flip": bool(eval_cfg.flip), "gallery_rule": str(eval_cfg.gallery_rule),
          "trials": int(eval_cfg.trials)}


def results_filename(eval_cfg) -> str:
  """`results.json` for the default evaluation; other settings get their own file.

  So `--config.mode=eval --config.eval.rerank=True` (or another checkpoint, flip
  averaging, the official gallery rule) adds `results_rerank.json` etc. beside the
  training's `results.json` instead of replacing it.
  """
  tags = []
  if str(eval_cfg.checkpoint) != "best":
    tags.append(f"ckpt{eval_cfg.checkpoint}" if str(eval_cfg.checkpoint).isdigit()
                else str(eval_cfg.checkpoint))
  if eval_cfg.rerank:
    tags.append("rerank")
  if eval_cfg.flip:
    tags.append("flip")
  if str(eval_cfg.gallery_rule) != "baseline":
    tags.append(str(eval_cfg.gallery_rule))
  return "_".join(["results"] + tags) + ".json"


def write_results_json(path: str, dataset: str, results: dict,
                       settings: dict | None = None) -> None:
  """Writes {"dataset", "settings", "<protocol>": {metrics, "std", "trials"}} atomically."""
  payload = {"dataset": dataset}
  if settings:
    payload["settings"] = dict(settings)
  for name in protocol_names(results):
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
