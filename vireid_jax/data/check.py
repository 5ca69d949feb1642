r"""Scans a dataset before training, so a bad file fails here and not at step 40k.

    python -m vireid_jax.data.check --dataset=NAME --root=DIR [--trial=T] [--no_decode]

NAME is any dataset the registry knows (`--help` lists them); `--trial`
checks one numbered split of a dataset that has them (default: all).
Prints image counts per camera and modality and per image mode, ids without
images, and every file that is empty, truncated, not an image, or grey in a
visible camera. Modes the readers convert (RGBA, palette, 16-bit, ...) are
counted and listed, not refused. Exits with status 1 if it found problems.
Uses the same readers as training (no TensorFlow); what is checked beyond
the images is each dataset's own `scan`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vireid_jax.data import registry
from vireid_jax.data.scan import Report


def check(name: str, root: str, splits: Sequence[int] = (), decode: bool = True) -> Report:
  """Scans the dataset `name` at `root` (`splits`: those numbered splits; () = all)."""
  dataset = registry.get(name)
  report = Report()
  report.info(f"{dataset.title} at {root}")
  dataset.scan(root, tuple(splits) or dataset.splits, decode, report)
  return report


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", choices=registry.names(), required=True)
  parser.add_argument("--root", required=True)
  parser.add_argument("--trial", type=int, default=0,
                      help="one numbered split, for datasets with splits (default: all)")
  parser.add_argument("--no_decode", action="store_true", help="skip decoding every image")
  args = parser.parse_args(argv)
  dataset = registry.get(args.dataset)
  if args.trial and args.trial not in dataset.splits:
    parser.error(f"--trial={args.trial}: {dataset.title} has "
                 + (f"splits {dataset.splits[0]}..{dataset.splits[-1]}." if dataset.splits
                    else "one split; leave --trial out."))
  report = check(args.dataset, args.root, (args.trial,) if args.trial else (),
                 decode=not args.no_decode)
  print(report.text())
  return 0 if report.ok else 1


if __name__ == "__main__":
  sys.exit(main())
