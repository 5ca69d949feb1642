r"""How far the training pipeline's resize is from PIL's LANCZOS (AGW / CAJ, and our evaluation).

    python -m benchmarks.resize_filters [--root=DIR] [--sizes=288x144,96x48]

AGW and CAJ resize every image with PIL's LANCZOS (`Image.ANTIALIAS`): training
images once, ahead of time, test images at load. Our evaluation does the same
(`images.load_image`); the tf.data training pipeline uses TF's Lanczos-3 with
antialiasing (`pipeline.decode_and_resize`). This decodes every image of a
dataset folder both ways and prints the per-value differences in grey levels,
also for TF's bilinear filter for comparison. Without --root it generates the
synthetic SYSU-MM01 layout (40 identities) in a temporary folder.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

import numpy as np

from vireid_jax.data import datasets, pipeline
from vireid_jax.data import images as images_lib


def differences(paths, size, method: str) -> np.ndarray:
  tf = pipeline.import_tf()
  out = []
  for path in paths:
    pil = images_lib.load_image(path, size).astype(np.int16)
    image = pipeline.decode(tf.io.read_file(path))
    resized = tf.image.resize(image, size, method=method, antialias=True)
    ours = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8).numpy()
    out.append(np.abs(ours.astype(np.int16) - pil).reshape(-1))
  return np.concatenate(out)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--root", default=None, help="a dataset folder (default: synthetic SYSU-MM01)")
  ap.add_argument("--sizes", default="288x144,96x48", help="HxW,HxW,...")
  args = ap.parse_args(argv)
  root = args.root
  if root is None:
    root = os.path.join(tempfile.mkdtemp(), "sysu")
    datasets.ensure_synthetic(root, "sysu", num_ids=40, seed=0)
  paths = sorted(p for ext in ("jpg", "png", "bmp")
                 for p in glob.glob(os.path.join(root, "**", f"*.{ext}"), recursive=True))
  print(f"{len(paths)} images under {root}")
  print("| size | TF filter vs PIL LANCZOS | mean | > 1 level | max |")
  print("|---|---|---:|---:|---:|")
  for text in args.sizes.split(","):
    size = tuple(int(s) for s in text.split("x"))
    for method in ("lanczos3", "bilinear"):
      d = differences(paths, size, method)
      print(f"| {size[0]}x{size[1]} | {method} | {d.mean():.3f} | {np.mean(d > 1):.1e} | "
            f"{d.max()} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
