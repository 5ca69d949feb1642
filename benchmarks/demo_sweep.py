r"""Trains several variants of a config on a GPU and prints their test metrics.

    python benchmarks/demo_sweep.py --root=DIR --variants='model.two_stream=False' \
        --variants='optim.name="adam";optim.lr_new=3.5e-4' [--base=configs/synthetic.py]

How the CPU demo's settings were chosen: the same trainer, model, losses and
evaluation as `vireid_jax.main`, but the tf.data pipeline is replaced by a
numpy one (`numpy_train_iterator`: the same sampler, the same augmentations
drawn from numpy) because the GPU machine has no TensorFlow. Each variant is a
';'-separated list of `key=value` overrides (values parsed as Python literals)
applied on top of the base config, with data.name=sysu and data.root=--root.
One JSON line per variant: its overrides, wall time and the headline metrics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_step as bench  # pylint: disable=g-import-not-at-top,wrong-import-position
from vireid_jax.data import channel_augment  # pylint: disable=g-import-not-at-top
from vireid_jax.data import images as images_lib
from vireid_jax.data import pipeline
from vireid_jax.data.sampler import PairedIdentitySampler


def _augment(img: np.ndarray, rng: np.random.Generator, spec: pipeline.AugmentSpec) -> np.ndarray:
  """Numpy twin of pipeline.augment_image (pad/crop, flip; numpy randomness)."""
  h, w, _ = img.shape
  if spec.pad:
    padded = np.zeros((h + 2 * spec.pad, w + 2 * spec.pad, 3), np.uint8)
    padded[spec.pad:spec.pad + h, spec.pad:spec.pad + w] = img
    y, x = rng.integers(0, 2 * spec.pad + 1, size=2)
    img = padded[y:y + h, x:x + w]
  if rng.random() < spec.flip_prob:
    img = img[:, ::-1]
  return img


def numpy_train_iterator(train_set, data_cfg, batch_cfg, *, seed, start_step=0,
                         host_id=0, num_hosts=1, **_):
  """Drop-in for pipeline.make_train_iterator without TensorFlow (cached decode).

  CAJ's channel operations are drawn by the same function as in the tf.data
  pipeline (`channel_augment.step_ops`), so they match it row for row.
  """
  sampler = PairedIdentitySampler(train_set, batch_cfg.identities, batch_cfg.instances, seed,
                                  host_id=host_id, num_hosts=num_hosts)
  size = tuple(int(s) for s in data_cfg.image_size)
  caches = {"visible": images_lib.load_images([r.path for r in train_set.visible], size),
            "infrared": images_lib.load_images([r.path for r in train_set.infrared], size)}
  spec = pipeline.AugmentSpec.from_config(data_cfg)
  views = pipeline.step_views(sampler, spec, host_id)
  step = int(start_step)
  while True:
    vis, ir, labels = sampler.indices(step)
    rng = np.random.default_rng([seed, step])
    batch = {"visible_labels": labels, "infrared_labels": labels}
    for name, rows, view in views:
      source, index = ("infrared", ir) if name == "infrared" else ("visible", vis)
      batch[name] = np.stack([_augment(caches[source][i], rng, spec) for i in index])
      if spec.device_ops:
        batch[f"{name}_ops"] = channel_augment.step_ops(
            seed, step, rows, [view] * len(rows), size, spec.erase_prob, spec.channel_prob)
    yield batch
    step += 1


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", required=True, help="a SYSU-layout dataset folder")
  parser.add_argument("--base", action="append", default=None,
                      help="config file[:arg]; repeat to sweep several (default configs/synthetic.py)")
  parser.add_argument("--variants", action="append", default=None)
  parser.add_argument("--seeds", default="0", help="comma-separated seeds per variant")
  args = parser.parse_args()
  pipeline.make_train_iterator = numpy_train_iterator
  from vireid_jax.training import trainer  # pylint: disable=g-import-not-at-top
  for base, variant in itertools.product(args.base or ["configs/synthetic.py"],
                                         args.variants or [""]):
    for seed in (int(s) for s in args.seeds.split(",")):
      config = bench.load_config(base)
      config.data.name, config.data.root, config.seed = "sysu", os.path.abspath(args.root), seed
      overrides = bench.set_keys(config, filter(None, (v.strip() for v in variant.split(";"))))
      start = time.time()
      with tempfile.TemporaryDirectory() as workdir:
        results = trainer.train_and_evaluate(config, workdir)
      row = {"base": base, "variant": overrides, "seed": seed, "wall_s": round(time.time() - start, 1)}
      for proto, r in results.items():
        row[proto] = {k: round(float(r[k]), 2) for k in ("rank1", "mAP") if k in r}
      print("SWEEP " + json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
