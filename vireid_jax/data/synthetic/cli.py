"""Command line of the generator (`python -m vireid_jax.data.synthetic`)."""

from __future__ import annotations

import argparse
from typing import Sequence

import vireid_jax.data.synthetic as package
from vireid_jax.data.synthetic.layouts import generate, layouts
from vireid_jax.data.synthetic.sheet import refuse_existing, sample_sheet


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m vireid_jax.data.synthetic",
                                   description=package.__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--layout", choices=layouts(), required=True)
  parser.add_argument("--out", required=True,
                      help="a new or empty folder (an existing non-empty one is refused)")
  parser.add_argument("--num_ids", type=int, default=40)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--images_per_cam", type=int, nargs=2, default=None, metavar=("MIN", "MAX"))
  parser.add_argument("--image_size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
  parser.add_argument("--test_ids", type=int, default=None,
                      help="test identities, for layouts with a test list (default: the "
                           "layout's share, as in the real dataset)")
  parser.add_argument("--val_ids", type=int, default=None,
                      help="validation identities, for layouts with a validation list")
  parser.add_argument("--workers", type=int, default=1,
                      help="processes rendering images (the files do not depend on it)")
  parser.add_argument("--sample_sheet", default="", help="also write a PNG grid of samples here")
  args = parser.parse_args(argv)
  if args.sample_sheet:
    refuse_existing(args.sample_sheet)   # before the work, not after
  generate(args.layout, args.out, num_ids=args.num_ids, seed=args.seed,
           images_per_cam=args.images_per_cam, image_size=args.image_size,
           test_ids=args.test_ids, val_ids=args.val_ids, workers=args.workers)
  print(f"Wrote a synthetic {args.layout}-layout dataset with {args.num_ids} ids to {args.out}")
  if args.sample_sheet:
    sample_sheet(args.out, args.layout, args.sample_sheet)
    print(f"Wrote the sample sheet {args.sample_sheet}")
