"""Times test-time feature extraction: the evaluation's embedding function on the device.

  python -m benchmarks.extract_features --config=configs/sysu.py --batch=128 --batch=256

The function is `evaluation.evaluators.make_embed_fn` (the one the evaluation and
`tools/extract` use: modality stem + shared trunk + pooling + BNNeck, then L2
normalisation), jitted for a fixed batch of device-resident float32 images,
with random parameters (speed does not depend on their values). Image
decoding is not included: it runs on host threads beside the device
(`evaluation/features.py`), measured separately by benchmarks/input_pipeline.py.
Prints images/s per batch size, without and with flip averaging.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from vireid_jax.evaluation import evaluators
from vireid_jax.models import vireid
from vireid_jax.training import setup


def time_extraction(config, batch: int, flip: bool, repeats: int) -> float:
  """Images/s of the jitted embedding of `batch` images (median of `repeats` runs of 10 calls)."""
  size = tuple(config.data.image_size)
  model = setup.build_model(config, common.NUM_CLASSES)
  variables = vireid.init_variables(model, jax.random.key(0), size, batch=2)
  embed = functools.partial(evaluators.make_embed_fn(model, config.eval.dtype), variables)

  @jax.jit
  def run(x):
    e = embed(x, 1)
    if flip:
      e = 0.5 * (e + embed(x[:, :, ::-1], 1))
    return e / jnp.linalg.norm(e, axis=1, keepdims=True)

  x = jax.random.normal(jax.random.key(1), (batch,) + size + (3,), jnp.float32)
  run(x).block_until_ready()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(10):
      out = run(x)
    out.block_until_ready()
    times.append((time.perf_counter() - t) / 10)
  return batch / float(np.median(times))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--batch", type=int, action="append", default=None)
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--out", default=None)
  args, config = common.parse_args(ap, default_config="configs/sysu.py")
  rows = []
  for batch in args.batch or [128]:
    for flip in (False, True):
      ips = time_extraction(config, batch, flip, args.repeats)
      rows.append({"batch": batch, "flip": flip, "images_per_s": round(ips, 1),
                   "device": jax.devices()[0].device_kind, "dtype": config.eval.dtype})
      print(json.dumps(rows[-1]), flush=True)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
