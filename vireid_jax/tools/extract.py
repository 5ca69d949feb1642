r"""Feature export: embeds a folder of person crops with a trained run, for your own index.

  python -m vireid_jax.tools.extract --workdir=DIR --images=FOLDER \
      --modality=visible|infrared --out=features.npz

Every .jpg/.jpeg/.png/.bmp under FOLDER (recursively, sorted by relative path)
is resized to the run's image size and embedded in fixed-size batches on the
local devices, exactly as the evaluation embeds test images. The .npz holds
`features` (N, D) float32 L2-normalised rows, `paths` (N,) the file names
relative to FOLDER, `modality`, and the `step` of the checkpoint used.
Cosine similarity (a dot product) between rows ranks matches.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import jax
import numpy as np
from PIL import Image, UnidentifiedImageError

from vireid_jax import fileio
from vireid_jax.data import images as images_lib
from vireid_jax.data.records import MODALITY_NAMES
from vireid_jax.tools import cli
from vireid_jax.tools import workdir as workdir_lib

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
MODALITIES = {name: modality for modality, name in MODALITY_NAMES.items()}


def find_images(folder: str) -> list[str]:
  """Image files under `folder`, as sorted paths relative to it ('/'-separated)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"--images={folder!r} is not a directory.")
  found = []
  for dirpath, dirnames, filenames in os.walk(folder):
    dirnames.sort()
    for name in filenames:
      if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
        rel = os.path.relpath(os.path.join(dirpath, name), folder)
        found.append(rel.replace(os.sep, "/"))
  if not found:
    raise FileNotFoundError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder!r}.")
  return sorted(found)


def check_headers(folder: str, names: Sequence[str]) -> None:
  """Fails early, naming the file, on any file PIL cannot identify (reads headers only)."""
  for name in names:
    path = os.path.join(folder, name)
    try:
      with Image.open(path):
        pass
    except (UnidentifiedImageError, OSError) as e:
      raise images_lib.BadImageError(
          f"Cannot read {path!r} as an image ({type(e).__name__}: {e}). Remove it from "
          "--images or replace it.") from e


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m vireid_jax.tools.extract",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="A training workdir.")
  p.add_argument("--images", required=True, help="Folder of person images (searched recursively).")
  p.add_argument("--modality", required=True, choices=tuple(MODALITIES),
                 help="Camera type of the images: selects the network's stem.")
  p.add_argument("--out", required=True, help="Output .npz path.")
  p.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  p.add_argument("--checkpoint", default="best", help="best | latest | a step number.")
  p.add_argument("--batch_size", type=int, default=0,
                 help="Images per device call (0: the run's eval.batch_size); a multiple of "
                      "the device count.")
  return p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
  args = parse_args(argv)
  fileio.refuse_to_replace([args.out], args.overwrite)
  folder = os.path.abspath(os.path.expanduser(args.images))
  names = find_images(folder)
  check_headers(folder, names)
  if args.batch_size < 0 or args.batch_size % jax.local_device_count():
    raise cli.UsageError(f"--batch_size={args.batch_size}: use 0 or a multiple of the "
                                 f"{jax.local_device_count()} local devices.")
  run = workdir_lib.load_run(args.workdir, args.checkpoint)
  batch_size = args.batch_size or int(run.config.eval.batch_size)
  if batch_size % jax.local_device_count():
    batch_size += jax.local_device_count() - batch_size % jax.local_device_count()
  extract = run.extractor(batch_size=batch_size)
  feats = extract([os.path.join(folder, n) for n in names], MODALITIES[args.modality])
  out = fileio.as_path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  with out.open("wb") as f:   # a file object: numpy would append .npz to a bare name
    np.savez(f, features=np.asarray(feats, np.float32), paths=np.array(names),
             modality=np.array(args.modality), step=np.array(run.step, np.int64))
  print(f"Wrote {out}: {feats.shape[0]} {args.modality} images x {feats.shape[1]} features "
        f"({run.checkpoint} checkpoint of {run.workdir}, step {run.step}).")
  return str(out)


if __name__ == "__main__":
  sys.exit(cli.run_cli(main))
