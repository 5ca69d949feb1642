"""Results as a text table and as a JSON file (written atomically)."""

from __future__ import annotations

import json

from vireid_jax import fileio
from vireid_jax.evaluation.metrics import METRIC_KEYS

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


def evaluation_settings(config, suite, checkpoint: str, step: int) -> dict:
  """What decides the numbers besides the weights: stored with them in the results file.

  `trials` is the number of draws the table averages (1 where nothing is drawn,
  as for a dataset whose numbered splits are separate runs); the results of
  such a dataset also record their `split`.
  """
  settings = {"checkpoint": str(checkpoint), "step": int(step),
              "rerank": bool(config.eval.rerank), "flip": bool(config.eval.flip),
              "gallery_rule": str(config.eval.gallery_rule),
              "trials": int(config.eval.trials) if suite.drawn else 1,
              "image_size": [int(s) for s in config.data.image_size],
              "dtype": str(config.eval.dtype)}
  if suite.records_split:
    settings["split"] = int(config.data.trial)
  return settings


def variant_tags(settings: dict, reference: dict) -> list[str]:
  """How an evaluation differs from the run's own report (`reference`), as name tags.

  The run's report (best checkpoint, no re-ranking, no flip averaging, the
  baseline gallery rule, the training's trials, image size, precision and
  split) has no tags; anything else gets one per difference, so it is
  written to its own file and summary tags and never replaces the report.
  """
  tags = []
  if settings["checkpoint"] != "best":
    tags.append(f"ckpt{settings['checkpoint']}" if settings["checkpoint"].isdigit()
                else settings["checkpoint"])
  if settings["rerank"]:
    tags.append("rerank")
  if settings["flip"]:
    tags.append("flip")
  if settings["gallery_rule"] != "baseline":
    tags.append(settings["gallery_rule"])
  if settings["trials"] != reference["trials"]:
    tags.append(f"trials{settings['trials']}")
  if list(settings["image_size"]) != list(reference["image_size"]):
    tags.append("x".join(str(s) for s in settings["image_size"]))
  if settings["dtype"] != reference["dtype"]:
    tags.append(settings["dtype"])
  if settings.get("split") != reference.get("split"):
    tags.append(f"split{settings['split']}")
  return tags


def results_filename(tags: list[str]) -> str:
  """`results.json` for the run's report, `results_rerank.json` etc. for the others."""
  return "_".join(["results"] + list(tags)) + ".json"


def summary_prefix(tags: list[str]) -> str:
  """`test` for the run's report, `test_rerank` etc.: one tag prefix per evaluation setting."""
  return "_".join(["test"] + list(tags))


def write_results_json(path: fileio.PathLike, dataset: str, results: dict,
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
  fileio.write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
