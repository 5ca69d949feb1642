r"""Deployment: a trained run's feature extractor as one ONNX or StableHLO file.

  python -m vireid_jax.tools.export --workdir=DIR --format=onnx|stablehlo --out=FILE \
      [--checkpoint=best|latest|STEP] [--dtype=float32|run] [--overwrite]

The file computes what the evaluation computes for the run (docs/deploy.md).
Inputs: `images`, uint8 (batch, H, W, 3) RGB at the run's image size, resized
by the caller as `tools.extract` resizes them (PIL LANCZOS), normalised
inside; `modality`, an int32 scalar, 0 visible or 1 infrared (any other value
gives NaN features). Output: `features`, float32 (batch, D) L2-normalised
rows. Any batch size, 1 included. Computed in float32, or with --dtype=run in
the run's evaluation precision (eval.dtype). Before it is written, the file
is run (onnxruntime on the CPU, or jax.export.deserialize) on random images
of both modalities and compared with JAX: a file that does not reproduce the
evaluation's features is not written. Bad input: one error line, exit status
2, nothing written.
"""

from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

from vireid_jax import fileio
from vireid_jax.data.records import MODALITY_NAMES
from vireid_jax.evaluation import serving
from vireid_jax.models import vireid
from vireid_jax.tools import cli, export_formats
from vireid_jax.tools import workdir as workdir_lib

DTYPES = ("float32", "run")
# Largest difference between the file's features and JAX's that passes the check before
# writing, by compute precision (features are unit-length rows).
TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 1e-2}
CHECK_IMAGES = 3           # random images per modality run through the file before writing


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m vireid_jax.tools.export",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="A training workdir.")
  p.add_argument("--format", required=True, help=" | ".join(export_formats.FORMATS))
  p.add_argument("--out", required=True, help="The file to write (.onnx, or e.g. .stablehlo).")
  p.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  p.add_argument("--checkpoint", default="best", help="best | latest | a step number.")
  p.add_argument("--dtype", default="float32",
                 help="float32 | run (the run's evaluation precision, eval.dtype).")
  return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
  """Every argument mistake, and a missing optional dependency, before any work."""
  export_formats.check_format(args.format)
  if args.dtype not in DTYPES:
    raise cli.UsageError(f"--dtype={args.dtype!r}: use one of {', '.join(DTYPES)}.")
  if args.checkpoint not in ("best", "latest") and not args.checkpoint.isdigit():
    raise cli.UsageError(f"--checkpoint={args.checkpoint!r}: use best, latest or a step number.")
  fileio.refuse_to_replace([args.out], args.overwrite)


def largest_difference(run_file: export_formats.Runner, serve, weights, image_size,
                       count: int = CHECK_IMAGES) -> float:
  """Max |file - JAX| over the features of `count` random images of each modality."""
  h, w = (int(s) for s in image_size)
  images = np.random.default_rng(0).integers(0, 256, (count, h, w, 3), dtype=np.uint8)
  expected = jax.jit(serve)
  worst = 0.0
  for modality in MODALITY_NAMES:
    want = np.asarray(expected(weights, images, np.int32(modality)))
    got = np.asarray(run_file(images, modality))
    if got.shape != want.shape:
      raise RuntimeError(f"The exported file gives features of shape {got.shape}, JAX "
                         f"{want.shape}.")
    worst = max(worst, float(np.max(np.abs(got - want))))
  return worst


def main(argv: list[str] | None = None) -> str:
  args = parse_args(argv)
  check_args(args)
  run = workdir_lib.load_run(args.workdir, args.checkpoint)
  dtype = "float32" if args.dtype == "float32" else str(run.config.eval.dtype)
  flip = bool(run.config.eval.flip)
  image_size = tuple(int(s) for s in run.config.data.image_size)
  dim = vireid.embedding_dim(run.model)
  serve = serving.serving_function(run.model, dtype, flip)
  metadata = {"vireid_jax.image_size": f"{image_size[0]}x{image_size[1]}",
              "vireid_jax.features": str(dim), "vireid_jax.dtype": dtype,
              "vireid_jax.flip": str(flip), "vireid_jax.step": str(run.step),
              "vireid_jax.modality": "0 visible, 1 infrared"}
  data = export_formats.WRITERS[args.format](serve, run.variables, metadata, image_size)
  diff = largest_difference(export_formats.RUNNERS[args.format](data), serve, run.variables,
                            image_size)
  if not diff <= TOLERANCE[dtype]:
    raise RuntimeError(f"The exported {args.format} file's features differ from JAX's by "
                       f"{diff:.3g} (allowed {TOLERANCE[dtype]:g}); nothing written.")
  out = fileio.as_path(args.out)
  fileio.write_bytes_atomic(out, data)
  print(f"Wrote {out} ({len(data) / 2**20:.1f} MiB, {args.format}): images uint8 (batch, "
        f"{image_size[0]}, {image_size[1]}, 3) and modality int32 (0 visible, 1 infrared) -> "
        f"features float32 (batch, {dim}); {dtype}{', flip-averaged' if flip else ''}; "
        f"{run.checkpoint} checkpoint of {run.workdir}, step {run.step}; largest difference "
        f"to JAX {diff:.1e}.")
  return str(out)


if __name__ == "__main__":
  sys.exit(cli.run_cli(main, bad_input_status=2))
