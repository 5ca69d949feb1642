r"""Throughput of the tf.data training pipeline, in images per second per CPU core.

  python -m benchmarks.input_pipeline [--threads=1,2] [--source_size=288,144]

Writes ~200 photo-like JPEGs (smooth colour fields plus fine texture, quality
90, like dataset crops) into a temporary folder, then times the full training
pipeline (sampler, read, decode, resize, all default augmentations, batching)
with a private tf.data thread pool of 1 and 2 threads, with and without
data.cache_decoded. "images per CPU-s" divides by the CPU time the process
used (all its threads), the per-core cost independent of thread-pool details.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
from PIL import Image

from vireid_jax.config_defaults import base_config
from vireid_jax.data import pipeline
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet


def photo_like(rng: np.random.Generator, height: int, width: int, gray: bool) -> np.ndarray:
  """Low-frequency colour blobs plus pixel noise: compresses like a real crop."""
  coarse = rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
  img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
  arr = np.asarray(img, np.float32) + rng.normal(0, 10, (height, width, 3))
  arr = np.clip(arr, 0, 255).astype(np.uint8)
  return arr.mean(-1).astype(np.uint8) if gray else arr


def write_images(root: str, num_images: int, size: tuple[int, int], num_ids: int) -> TrainSet:
  rng = np.random.default_rng(0)
  per_modality = num_images // 2
  records = {VISIBLE: [], INFRARED: []}
  for modality in (VISIBLE, INFRARED):
    for i in range(per_modality):
      label = i % num_ids
      path = os.path.join(root, f"{modality}_{i:04d}.jpg")
      Image.fromarray(photo_like(rng, size[0], size[1], gray=modality == INFRARED)).save(
          path, quality=90)
      records[modality].append(ImageRecord(path, label, 1 if modality == VISIBLE else 3, modality))
  return TrainSet(tuple(records[VISIBLE]), tuple(records[INFRARED]), num_ids,
                  tuple(range(num_ids)))


def time_pipeline(train_set, cfg, threads: int, steps: int,
                  warmup: int) -> tuple[float, float, float]:
  """(images/s wall, images per CPU-second of this process, seconds to build)."""
  t0 = time.perf_counter()
  it = pipeline.make_train_iterator(train_set, cfg.data, cfg.batch, seed=0,
                                    num_steps=warmup + steps, num_threads=threads)
  for _ in range(warmup):
    next(it)
  t1, c1 = time.perf_counter(), time.process_time()
  for _ in range(steps):
    batch = next(it)
  elapsed, cpu = time.perf_counter() - t1, time.process_time() - c1
  images = steps * (batch["visible"].shape[0] + batch["infrared"].shape[0])
  return images / elapsed, images / cpu, t1 - t0


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num_images", type=int, default=200)
  parser.add_argument("--num_ids", type=int, default=20)
  parser.add_argument("--source_size", default="288,144", help="JPEG height,width")
  parser.add_argument("--image_size", default="288,144", help="training height,width")
  parser.add_argument("--threads", default="1,2")
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--warmup", type=int, default=5)
  args = parser.parse_args()
  source = tuple(int(v) for v in args.source_size.split(","))
  size = tuple(int(v) for v in args.image_size.split(","))
  threads = [int(t) for t in args.threads.split(",")]

  cfg = base_config()          # default augmentations: pad 10, flip, erasing, channel
  cfg.data.image_size = size
  pipeline.import_tf()
  with tempfile.TemporaryDirectory() as root:
    train_set = write_images(root, args.num_images, source, args.num_ids)
    kb = np.mean([os.path.getsize(r.path) for r in train_set.visible + train_set.infrared]) / 1024
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores visible)")
    print(f"{args.num_images} JPEGs of {source[0]}x{source[1]} (mean {kb:.1f} KiB) -> "
          f"{size[0]}x{size[1]}, batch {cfg.batch.identities}x{cfg.batch.instances} x 2 "
          f"modalities, {args.steps} timed steps after {args.warmup} warm-up")
    print()
    print("| cache_decoded | threads | images/s | images/s per thread | images per CPU-s "
          "| build s |")
    print("|---|---|---|---|---|---|")
    for cache in (False, True):
      cfg.data.cache_decoded = cache
      for t in threads:
        rate, per_cpu_s, build = time_pipeline(train_set, cfg, t, args.steps, args.warmup)
        print(f"| {cache} | {t} | {rate:.0f} | {rate / t:.0f} | {per_cpu_s:.0f} | {build:.1f} |",
              flush=True)


if __name__ == "__main__":
  main()
