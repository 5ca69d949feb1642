r"""Mean ± std over several runs' results: a dataset's numbered splits (RegDB's ten), or seeds.

  python -m vireid_jax.tools.aggregate runs/regdb_t*/results.json [--out=regdb.json]

Each file is one run's `results.json` (itself a mean over that run's gallery
trials). Per protocol the table gives the mean over runs and the standard
deviation across runs (ddof=0, as the per-trial one), the numbers papers report
for RegDB. Runs of different datasets, or evaluated with different settings
(re-ranking, flip averaging, gallery rule, image size, precision), are refused:
their mean would mean nothing. So is the same split given twice; the table
says how many of the dataset's splits it averages. Imports neither JAX nor
TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from vireid_jax import fileio
from vireid_jax.data import registry
from vireid_jax.evaluation import report as report_lib
from vireid_jax.evaluation.metrics import METRIC_KEYS
from vireid_jax.tools.cli import UsageError, run_cli

# Settings that must agree between the runs; step and checkpoint may differ.
MUST_MATCH = ("rerank", "flip", "gallery_rule", "trials", "image_size", "dtype")


def dataset_title(label: str) -> str:
  """How messages name the dataset of a results file's "dataset" label."""
  dataset = registry.for_label(label)
  return dataset.title if dataset else str(label)


def load_results(path: str) -> dict:
  """One results file, checked to hold protocol results."""
  text = fileio.read_text(path)
  if text is None:
    raise FileNotFoundError(f"{path} does not exist: give the results.json of finished runs.")
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise UsageError(f"{path} is not valid JSON ({e}).") from e
  if not isinstance(data, dict) or not report_lib.protocol_names(data):
    raise UsageError(f"{path} holds no protocol results: is it a vireid_jax results.json?")
  return data


def aggregate(runs: Sequence[tuple[str, dict]]) -> tuple[str, dict]:
  """(dataset, {protocol: {metrics (mean over runs), "std", "trials": number of runs}})."""
  if len(runs) < 2:
    raise UsageError("Give at least two results files to aggregate.")
  datasets = {data.get("dataset") for _, data in runs}
  if len(datasets) > 1:
    raise UsageError(f"The runs are of different datasets ({sorted(map(str, datasets))}).")
  for key in MUST_MATCH:
    values = {json.dumps(data.get("settings", {}).get(key)) for _, data in runs
              if key in data.get("settings", {})}
    if len(values) > 1:
      differing = [f"{path}: {data['settings'][key]}" for path, data in runs
                   if key in data.get("settings", {})]
      raise UsageError(f"The runs were evaluated with different {key} ({'; '.join(differing)}): "
                       "aggregate runs evaluated alike.")
  splits = [data.get("settings", {}).get("split") for _, data in runs]
  if any(s is not None for s in splits):
    title = dataset_title(next(iter(datasets)))
    seen = {}
    for (path, _), split in zip(runs, splits):
      if split is None:
        raise UsageError(f"{path} does not record its {title} split: evaluate that run again "
                         "(--config.mode=eval) to record it.")
      if split in seen:
        raise UsageError(f"{seen[split]} and {path} are both {title} split {split}: give each "
                         "split once.")
      seen[split] = path
  common = [p for p in report_lib.protocol_names(runs[0][1])
            if all(p in data for _, data in runs)]
  if not common:
    raise UsageError("The runs share no protocol.")
  out = {}
  for name in common:
    values = {k: np.array([float(data[name][k]) for _, data in runs]) for k in METRIC_KEYS}
    out[name] = {k: float(v.mean()) for k, v in values.items()}
    out[name]["std"] = {k: float(v.std()) for k, v in values.items()}
    out[name]["trials"] = len(runs)
  return str(datasets.pop()), out


def main(argv: list[str] | None = None) -> str:
  p = argparse.ArgumentParser(prog="python -m vireid_jax.tools.aggregate",
                              description=__doc__.splitlines()[0])
  p.add_argument("results", nargs="+", help="results.json files of finished runs")
  p.add_argument("--out", default="", help="also write the aggregate as JSON here")
  p.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  args = p.parse_args(argv)
  if args.out:
    fileio.refuse_to_replace([args.out], args.overwrite)
  runs = [(path, load_results(path)) for path in args.results]
  dataset, table = aggregate(runs)
  label = f"{dataset}, {len(runs)} runs"
  splits = sorted(data["settings"]["split"] for _, data in runs
                  if "split" in data.get("settings", {}))
  if splits:
    spec = registry.for_label(dataset)
    of = f" of the {len(spec.splits)}" if spec and spec.splits else ""
    label = f"{dataset}, {len(splits)}{of} splits ({', '.join(map(str, splits))})"
  text = report_lib.format_table(table, label, over="runs")
  print(text)
  if args.out:
    report_lib.write_results_json(args.out, label, table,
                                  {"runs": [str(fileio.as_path(path)) for path, _ in runs]})
    print(f"\nwritten to {args.out}")
  return text


if __name__ == "__main__":
  sys.exit(run_cli(main))
