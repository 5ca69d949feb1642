r"""Trains several variants of a config on a GPU and prints their test metrics.

    python -m benchmarks.demo_sweep --root=DIR --variants='model.two_stream=False' \
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
import tempfile
import time

import numpy as np

from benchmarks import common
from vireid_jax.data import images as images_lib
from vireid_jax.data import pipeline
from vireid_jax.data.sampler import PairedIdentitySampler


def _augment(img: np.ndarray, rng: np.random.Generator, visible: bool,
             spec: pipeline.AugmentSpec) -> np.ndarray:
  """Numpy twin of pipeline.augment_image (same operations, numpy randomness)."""
  h, w, _ = img.shape
  if spec.pad:
    padded = np.zeros((h + 2 * spec.pad, w + 2 * spec.pad, 3), np.uint8)
    padded[spec.pad:spec.pad + h, spec.pad:spec.pad + w] = img
    y, x = rng.integers(0, 2 * spec.pad + 1, size=2)
    img = padded[y:y + h, x:x + w]
  if rng.random() < spec.flip_prob:
    img = img[:, ::-1]
  if visible and rng.random() < spec.channel_prob:
    choice = rng.integers(4)
    gray = (img.astype(np.float32) @ np.array(pipeline.GRAY_WEIGHTS, np.float32)
            if choice == 3 else img[..., choice].astype(np.float32))
    img = np.repeat(np.clip(np.round(gray), 0, 255).astype(np.uint8)[..., None], 3, -1)
  if rng.random() < spec.erase_prob:
    for _ in range(pipeline.ERASE_ATTEMPTS):
      area = rng.uniform(*pipeline.ERASE_AREA) * h * w
      aspect = rng.uniform(pipeline.ERASE_MIN_ASPECT, 1 / pipeline.ERASE_MIN_ASPECT)
      eh, ew = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
      if eh < h and ew < w:
        y, x = rng.integers(0, h - eh), rng.integers(0, w - ew)
        img = img.copy()
        img[y:y + eh, x:x + ew] = pipeline.ERASE_FILL
        break
  return img


def numpy_train_iterator(train_set, data_cfg, batch_cfg, *, seed, start_step=0,
                         host_id=0, num_hosts=1, **_):
  """Drop-in for pipeline.make_train_iterator without TensorFlow (cached decode)."""
  sampler = PairedIdentitySampler(train_set, batch_cfg.identities, batch_cfg.instances, seed,
                                  host_id=host_id, num_hosts=num_hosts)
  size = tuple(int(s) for s in data_cfg.image_size)
  vis_cache = images_lib.load_images([r.path for r in train_set.visible], size)
  ir_cache = images_lib.load_images([r.path for r in train_set.infrared], size)
  spec = pipeline.AugmentSpec.from_config(data_cfg)
  step = int(start_step)
  while True:
    vis, ir, labels = sampler.indices(step)
    rng = np.random.default_rng([seed, step])
    yield {"visible": np.stack([_augment(vis_cache[i], rng, True, spec) for i in vis]),
           "infrared": np.stack([_augment(ir_cache[i], rng, False, spec) for i in ir]),
           "visible_labels": labels, "infrared_labels": labels}
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
      config = common.load_config(base)
      config.data.name, config.data.root, config.seed = "sysu", os.path.abspath(args.root), seed
      overrides = common.set_keys(config, filter(None, (v.strip() for v in variant.split(";"))))
      start = time.time()
      with tempfile.TemporaryDirectory() as workdir:
        results = trainer.train_and_evaluate(config, workdir)
      row = {"base": base, "variant": overrides, "seed": seed, "wall_s": round(time.time() - start, 1)}
      for proto, r in results.items():
        row[proto] = {k: round(float(r[k]), 2) for k in ("rank1", "mAP") if k in r}
      print("SWEEP " + json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
