r"""Rank-list picture of a trained run: infrared queries and their top-k visible matches.

  python -m vireid_jax.tools.visualize_ranks --workdir=DIR [--num_queries 8 --topk 10]

Each row is one query (blue frame) followed by its k closest gallery images,
framed green when the identity is the query's and red otherwise, with the rank
and the distance under each. Queries and gallery are those the evaluation
uses for one infrared-to-visible protocol row (`--protocol`, default: the
dataset's, e.g. SYSU-MM01's all-search single-shot) in one trial (`--trial`).
Writes DIR/plots/rank_list.png unless --out says otherwise, and beside it rank_list.json with the same lists as data (paths, person ids,
distances, matches).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from PIL import Image

from vireid_jax import fileio
from vireid_jax.data import datasets
from vireid_jax.evaluation import rank_lists
from vireid_jax.tools import cli
from vireid_jax.tools import workdir as workdir_lib


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m vireid_jax.tools.visualize_ranks",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="A training workdir.")
  p.add_argument("--num_queries", type=int, default=8, help="Rows: queries spread evenly over the test queries.")
  p.add_argument("--topk", type=int, default=10, help="Gallery images per row.")
  p.add_argument("--out", default="",
                 help="PNG path (default WORKDIR/plots/rank_list.png); the ranks go beside it "
                      "as .json.")
  p.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  p.add_argument("--checkpoint", default="best", help="best | latest | a step number.")
  p.add_argument("--protocol", default="",
                 help="A row of the results with infrared queries and a visible gallery "
                      "(default: the dataset's rank-list row).")
  p.add_argument("--trial", type=int, default=0, help="The draw, for rows drawn per trial "
                                                      "(0-based).")
  p.add_argument("--height", type=int, default=0,
                 help="Shown image height in pixels (0: the training image size); width follows.")
  return p.parse_args(argv)


def display_size(image_size, height: int) -> tuple[int, int]:
  """(height, width) for showing images, keeping the training aspect ratio."""
  h, w = (int(s) for s in image_size)
  if height <= 0:
    return h, w
  return int(height), max(1, round(w * height / h))


def main(argv: list[str] | None = None) -> str:
  args = parse_args(argv)
  if args.out:
    fileio.refuse_to_replace([args.out, fileio.as_path(args.out).with_suffix(".json")],
                        args.overwrite)
  if args.num_queries < 1 or args.topk < 1:
    raise cli.UsageError(f"--num_queries={args.num_queries} --topk={args.topk}: "
                                 "both must be >= 1.")
  run = workdir_lib.load_run(args.workdir, args.checkpoint)
  suite, test_set = run.test_data()
  protocol = args.protocol or suite.rank_list_row
  if protocol not in rank_lists.rank_list_rows(suite):
    raise cli.UsageError(f"--protocol={protocol}: use one of "
                         f"{', '.join(rank_lists.rank_list_rows(suite))} (rows with infrared "
                         "queries and a visible gallery).")
  ranks = rank_lists.build_rank_list(
      suite, test_set, run.config.eval, run.extractor(), num_queries=args.num_queries,
      k=args.topk, row=protocol, trial=args.trial)
  picture = rank_lists.render(ranks, display_size(run.config.data.image_size, args.height),
                              datasets.test_image_source(run.config.data))
  out = fileio.as_path(args.out or run.workdir / "plots" / "rank_list.png")
  out.parent.mkdir(parents=True, exist_ok=True)
  with out.open("wb") as f:
    Image.fromarray(picture).save(f, format=Image.registered_extensions().get(
        out.suffix.lower(), "PNG"))
  fileio.write_text_atomic(out.with_suffix(".json"),
                           json.dumps(rank_lists.to_json(ranks), indent=1))
  hits = int(np.sum(ranks.matches[:, 0]))
  print(f"Wrote {out} ({picture.shape[1]}x{picture.shape[0]} px): {len(ranks.query_paths)} "
        f"queries x top-{ranks.matches.shape[1]} of the {run.checkpoint} checkpoint (step "
        f"{run.step}); rank 1 is correct for {hits} of them.")
  return str(out)


if __name__ == "__main__":
  sys.exit(cli.run_cli(main))
