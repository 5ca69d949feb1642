r"""Throughput of the tf.data training pipeline, in images per second per CPU core.

  python -m benchmarks.input_pipeline [--threads=1,2] [--source_size=288,144] \
      [--sources=files,tfds,tfds_jpeg]

Writes ~200 photo-like JPEGs (smooth colour fields plus fine texture, quality
90, like dataset crops) in the SYSU-MM01 layout into a temporary folder and
prepares them into TFDS records at the training size (`prepare_tfds`, PNG and
JPEG).
Then times the full training pipeline (sampler, read, decode, resize, all
default augmentations, batching) from each source: the JPEG files
(data.source=files) and the TFDS records (data.source=tfds), with a private
tf.data thread pool of 1 and 2 threads, with and without data.cache_decoded.
"images per CPU-s" divides by the CPU time the process used (all its
threads), the per-core cost independent of thread-pool details and of other
load on the machine. Prints a Markdown table for BENCHMARKS.md.
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
from vireid_jax.data import datasets, pipeline, prepare_tfds, tensorflow_setup


def photo_like(rng: np.random.Generator, height: int, width: int, gray: bool) -> np.ndarray:
  """Low-frequency colour blobs plus pixel noise: compresses like a real crop."""
  coarse = rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
  img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
  arr = np.asarray(img, np.float32) + rng.normal(0, 10, (height, width, 3))
  arr = np.clip(arr, 0, 255).astype(np.uint8)
  return arr.mean(-1).astype(np.uint8) if gray else arr


def write_images(root: str, num_images: int, size: tuple[int, int], num_ids: int) -> None:
  """Photo-like JPEGs in the SYSU-MM01 layout: visible in cam1, infrared in cam3.

  Ids 1..num_ids, half the images per modality; the last two ids are the test
  split (so that the TFDS records have query and gallery splits too).
  """
  rng = np.random.default_rng(0)
  per_id = max(1, num_images // (2 * num_ids))
  for pid in range(1, num_ids + 1):
    for cam, gray in ((1, False), (3, True)):
      folder = os.path.join(root, f"cam{cam}", f"{pid:04d}")
      os.makedirs(folder)
      for k in range(per_id):
        Image.fromarray(photo_like(rng, size[0], size[1], gray)).save(
            os.path.join(folder, f"{k + 1:04d}.jpg"), quality=90)
  for cam in (2, 4, 5, 6):
    os.makedirs(os.path.join(root, f"cam{cam}"))
  os.makedirs(os.path.join(root, "exp"))
  ids = [str(i) for i in range(1, num_ids + 1)]
  for name, listed in (("train_id.txt", ids[:-2]), ("val_id.txt", ids[:1]),
                       ("test_id.txt", ids[-2:])):
    with open(os.path.join(root, "exp", name), "w") as f:
      f.write(",".join(listed))


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
  parser.add_argument("--sources", default="files,tfds,tfds_jpeg",
                      help="files, tfds (PNG records) and/or tfds_jpeg (JPEG records)")
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--warmup", type=int, default=5)
  args = parser.parse_args()
  source = tuple(int(v) for v in args.source_size.split(","))
  size = tuple(int(v) for v in args.image_size.split(","))
  threads = [int(t) for t in args.threads.split(",")]

  cfg = base_config()          # default augmentations: pad 10, flip, erasing, channel
  cfg.data.image_size = size
  tensorflow_setup.import_tf()
  with tempfile.TemporaryDirectory() as tmp:
    root, tfds_dir = os.path.join(tmp, "jpegs"), os.path.join(tmp, "tfds")
    write_images(root, args.num_images, source, args.num_ids)
    cfg.data.root, cfg.data.tfds_dir = root, tfds_dir
    train_sets = {"files": datasets.load_train_set(cfg.data, tmp)}
    paths = [r.path for r in train_sets["files"].visible + train_sets["files"].infrared]
    kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores visible)")
    print(f"{len(paths)} training JPEGs of {source[0]}x{source[1]} (mean {kb:.1f} KiB) -> "
          f"{size[0]}x{size[1]}, batch {cfg.batch.identities}x{cfg.batch.instances} x 2 "
          f"modalities, {args.steps} timed steps after {args.warmup} warm-up")
    for name in args.sources.split(","):
      if name == "files":
        continue
      encoding = "jpeg" if name == "tfds_jpeg" else "png"
      t0, c0 = time.perf_counter(), time.process_time()
      prepare_tfds.prepare("sysu", root, os.path.join(tfds_dir, encoding), size, encoding)
      wall, cpu = time.perf_counter() - t0, time.process_time() - c0
      cfg.data.source, cfg.data.tfds_dir = "tfds", os.path.join(tfds_dir, encoding)
      train_sets[name] = datasets.load_train_set(cfg.data, tmp)
      stored = sum(map(len, train_sets[name].images.encoded(paths))) / len(paths) / 1024
      exact = pipeline.decode_files(paths, size).astype(np.int16)
      error = np.abs(pipeline.decode_files(paths, size, store=train_sets[name].images) - exact)
      print(f"prepare_tfds --encoding={encoding} (all splits, once): {wall:.1f} s wall, "
            f"{cpu:.1f} s CPU; {stored:.1f} KiB per stored training image; mean |difference| "
            f"to the files' pixels {error.mean():.2f} grey levels (99th percentile "
            f"{np.percentile(error, 99):.0f})")
    print()
    print("| source | cache_decoded | threads | images/s | images/s per thread "
          "| images per CPU-s | build s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sources.split(","):
      for cache in (False, True):
        cfg.data.cache_decoded = cache
        for t in threads:
          rate, per_cpu_s, build = time_pipeline(train_sets[name], cfg, t, args.steps,
                                                 args.warmup)
          print(f"| {name} | {cache} | {t} | {rate:.0f} | {rate / t:.0f} | {per_cpu_s:.0f} "
                f"| {build:.1f} |", flush=True)


if __name__ == "__main__":
  main()
