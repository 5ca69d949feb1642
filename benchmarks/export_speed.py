"""CPU speed of the exported feature extractor beside the JAX extractor of tools.extract.

  python -m benchmarks.export_speed --config=configs/synthetic.py --batch=1 --batch=32
  python -m benchmarks.export_speed --config=configs/sysu.py --config.eval.dtype=float32

One model of `--config` with random weights (speed does not depend on their
values) is timed three ways on the same random uint8 batches, both modalities
alternating: JAX (the function tools.extract compiles: `features.embed_pixels`
in the config's eval.dtype, flip averaging as eval.flip says), the ONNX file
of `tools.export` run by onnxruntime on the CPU, and its StableHLO file run by
`jax.export.deserialize`. Image decoding is left out: it is the same for all
three. Prints one JSON row per batch size: images/s (median of `--repeats`
runs of `--calls` calls, after one untimed call) and the file sizes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

import jax
import numpy as np
import onnxruntime

from benchmarks import common
from vireid_jax.evaluation import evaluators, features, serving
from vireid_jax.models import vireid
from vireid_jax.tools import export_formats
from vireid_jax.training import setup


def images_per_s(run, batches, repeats: int, calls: int) -> float:
  """Median images/s of `run(images, modality)` over `repeats` runs of `calls` calls."""
  run(batches[0], 0)
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    for i in range(calls):
      np.asarray(run(batches[i % len(batches)], i % 2))
    rates.append(calls * len(batches[0]) / (time.perf_counter() - t))
  return float(np.median(rates))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--batch", type=int, action="append", default=None)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--calls", type=int, default=4)
  ap.add_argument("--out", default=None)
  args, config = common.parse_args(ap, default_config="configs/synthetic.py")
  size = tuple(int(s) for s in config.data.image_size)
  model = setup.build_model(config, common.NUM_CLASSES)
  weights = jax.tree.map(np.asarray, vireid.init_variables(model, jax.random.key(0), size))
  flip = bool(config.eval.flip)
  serve = serving.serving_function(model, "float32", flip)
  files = {fmt: export_formats.WRITERS[fmt](serve, weights, {}, size)
           for fmt in export_formats.FORMATS}
  runners = {fmt: export_formats.RUNNERS[fmt](data) for fmt, data in files.items()}
  embed = evaluators.make_embed_fn(model, config.eval.dtype)
  jitted = {m: jax.jit(functools.partial(features.embed_pixels, embed, modality=m, flip=flip))
            for m in (0, 1)}
  runners["jax"] = lambda images, modality: jitted[modality](weights, images)
  rows = []
  for batch in args.batch or [1, 32]:
    rng = np.random.default_rng(batch)
    batches = [rng.integers(0, 256, (batch,) + size + (3,), dtype=np.uint8) for _ in range(2)]
    row = {"batch": batch, "image_size": list(size), "depth": int(config.model.depth),
           "jax_dtype": str(config.eval.dtype), "export_dtype": "float32", "flip": flip,
           "cpu_cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
           "jax": jax.__version__}
    for name in ("jax", "onnx", "stablehlo"):
      row[f"{name}_images_per_s"] = round(images_per_s(runners[name], batches, args.repeats,
                                                       args.calls), 1)
    row.update({f"{fmt}_mib": round(len(data) / 2**20, 1) for fmt, data in files.items()})
    rows.append(row)
    print(json.dumps(row), flush=True)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
