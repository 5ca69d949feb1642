r"""Trains several variants of a config and prints their test metrics.

    python -m benchmarks.demo_sweep --root=DIR --variants='model.two_stream=False' \
        --variants='optim.name="adam";optim.lr_new=3.5e-4' [--base=configs/synthetic.py]

How the CPU demo's settings were chosen: the same trainer, input pipeline,
model, losses and evaluation as `vireid_jax.main` (it needs TensorFlow for the
input pipeline, as training does). Each variant is a ';'-separated list of
`key=value` overrides (values parsed as Python literals) applied on top of the
base config, with data.name=sysu and data.root=--root. One JSON line per
variant: its overrides, wall time and the headline metrics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time

from benchmarks import common
from vireid_jax.training import trainer


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", required=True, help="a SYSU-layout dataset folder")
  parser.add_argument("--base", action="append", default=None,
                      help="config file[:arg]; repeat to sweep several (default configs/synthetic.py)")
  parser.add_argument("--variants", action="append", default=None)
  parser.add_argument("--seeds", default="0", help="comma-separated seeds per variant")
  args = parser.parse_args()
  for base, variant in itertools.product(args.base or ["configs/synthetic.py"],
                                         args.variants or [""]):
    for seed in (int(s) for s in args.seeds.split(",")):
      config = common.load_config(base)
      config.data.name, config.data.root, config.seed = "sysu", os.path.abspath(args.root), seed
      overrides = common.set_keys(config, filter(None, (v.strip() for v in variant.split(";"))))
      start = time.time()
      with tempfile.TemporaryDirectory() as workdir:
        trainer.train_and_evaluate(config, workdir)
        with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
          results = json.load(f)
      row = {"base": base, "variant": overrides, "seed": seed, "wall_s": round(time.time() - start, 1)}
      for proto, r in results.items():
        if not isinstance(r, dict) or "rank1" not in r:
          continue
        row[proto] = {k: round(float(r[k]), 2) for k in ("rank1", "mAP") if k in r}
      print("SWEEP " + json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
