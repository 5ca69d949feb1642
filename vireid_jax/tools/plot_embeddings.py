r"""Modality-distribution plot of trained runs: are visible and infrared features aligned?

  python -m vireid_jax.tools.plot_embeddings --workdir=DIR [--baseline_workdir=BASE]

Embeds the test images of both modalities, projects them to 2-D (PCA, and
t-SNE when scikit-learn is installed: `pip install scikit-learn`), coloured by
identity with a circle for visible and a triangle for infrared images, and
draws the per-dimension means and variances of the two modalities as
histograms. With --baseline_workdir the baseline's column comes first, side by
side with the full model, on shared axes; both runs must have been trained on
the same dataset (--allow_different_data draws them anyway, with a warning).
Writes DIR/plots/embeddings.png unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

from vireid_jax import fileio
from vireid_jax.data import datasets, registry
from vireid_jax.evaluation import rank_lists
from vireid_jax.tools import embeddings
from vireid_jax.tools import cli
from vireid_jax.tools import workdir as workdir_lib
from vireid_jax.training import run_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m vireid_jax.tools.plot_embeddings",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="The full model's training workdir.")
  p.add_argument("--baseline_workdir", default="", help="Optional baseline workdir, drawn beside it.")
  p.add_argument("--out", default="", help="PNG path (default WORKDIR/plots/embeddings.png).")
  p.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  p.add_argument("--checkpoint", default="best", help="best | latest | a step number.")
  p.add_argument("--num_ids", type=int, default=12, help="Identities shown in the 2-D projections.")
  p.add_argument("--max_images", type=int, default=1000,
                 help="Most test images per modality (spread evenly) for the statistics.")
  p.add_argument("--tsne", default="auto", choices=("auto", "on", "off"),
                 help="auto: t-SNE when scikit-learn is installed.")
  p.add_argument("--label", default="full model", help="Title of the --workdir column.")
  p.add_argument("--baseline_label", default="baseline", help="Title of the baseline column.")
  p.add_argument("--allow_different_data", action="store_true",
                 help="Draw runs of different datasets side by side anyway (with a warning).")
  return p.parse_args(argv)


def data_identity(data_cfg) -> tuple[str, tuple]:
  """(description, key) of the test images a run's `config.data` names; equal keys, equal images.

  A synthetic dataset is generated from its layout and number of identities
  alone (fixed seed), so two workdirs that each generated one hold the same images.
  """
  name, layout = str(data_cfg.name), str(data_cfg.synthetic_layout)
  known = (layout if name == registry.SYNTHETIC else name) in registry.DATASETS
  trial = datasets.dataset_of(data_cfg).split_of(data_cfg.trial) if known else None
  where = os.path.abspath(os.path.expanduser(data_cfg.root)) if data_cfg.root else ""
  if name == registry.SYNTHETIC and not where:
    num_ids = int(data_cfg.synthetic_num_ids)
    text = f"synthetic {layout} layout, {num_ids} identities"
    key = (name, layout, num_ids, trial)
  else:
    text, key = f"{name} at {where or '(no data.root)'}", (name, where, trial)
  return (text + (f", trial {trial}" if trial is not None else "")), key


def check_same_data(workdir: str, baseline_workdir: str, allow_different: bool) -> None:
  """Refuses (or, when allowed, warns about) two runs whose test sets differ, before any work."""
  ours = data_identity(run_info.read_config(workdir).data)
  theirs = data_identity(run_info.read_config(baseline_workdir).data)
  if ours[1] == theirs[1]:
    return
  message = (f"the two runs were trained on different data: {workdir} on {ours[0]}, "
             f"{baseline_workdir} on {theirs[0]}. Their embeddings and statistics do not "
             "compare")
  if not allow_different:
    raise cli.UsageError(message + "; pass two runs of one dataset, or "
                                 "--allow_different_data to draw them anyway.")
  print(f"warning: {message}.", file=sys.stderr)


def embed_test_set(workdir: str, checkpoint: str, label: str, max_images: int
                    ) -> embeddings.Embeddings:
  """Restores a run and embeds (up to `max_images` per modality of) its test images.

  The column is titled "`label`, step S" (S: the restored checkpoint's step).
  """
  run = workdir_lib.load_run(workdir, checkpoint)
  suite, test_set = run.test_data()
  extract = run.extractor()
  feats, pids, mods = [], [], []
  for modality, imgs in suite.images_by_modality(test_set).items():
    keep = rank_lists.evenly_spaced(len(imgs.paths), max_images)
    feats.append(extract([imgs.paths[i] for i in keep], modality))
    pids.append(imgs.pids[keep])
    mods.append(np.full(len(keep), modality))
  print(f"{label}: {run.checkpoint} checkpoint of {run.workdir} (step {run.step}), "
        f"{len(pids[0])} visible + {len(pids[1])} infrared test images.")
  return embeddings.Embeddings(f"{label}, step {run.step}", np.concatenate(feats),
                               np.concatenate(pids), np.concatenate(mods))


def main(argv: list[str] | None = None) -> str:
  args = parse_args(argv)
  fileio.refuse_to_replace([args.out] if args.out else [], args.overwrite)
  if args.num_ids < 1 or args.max_images < 2:
    raise cli.UsageError(f"--num_ids={args.num_ids} --max_images={args.max_images}: "
                                 "use --num_ids >= 1 and --max_images >= 2.")
  use_tsne = args.tsne == "on" or (args.tsne == "auto" and embeddings.tsne_available())
  if args.tsne == "on" and not embeddings.tsne_available():
    raise cli.UsageError("--tsne=on needs scikit-learn: pip install scikit-learn.")
  if args.tsne == "auto" and not use_tsne:
    print("note: scikit-learn is not installed: PCA only (pip install scikit-learn for t-SNE).",
          file=sys.stderr)
  same_run = bool(args.baseline_workdir) and (
      fileio.as_path(args.baseline_workdir) == fileio.as_path(args.workdir))
  if args.baseline_workdir and not same_run:
    check_same_data(args.workdir, args.baseline_workdir, args.allow_different_data)
  runs = []
  if args.baseline_workdir:
    runs.append(embed_test_set(args.baseline_workdir, args.checkpoint, args.baseline_label,
                                args.max_images))
  if same_run:                                 # embed once; the title keeps the step
    step = runs[0].label[len(args.baseline_label):]
    runs.append(dataclasses.replace(runs[0], label=args.label + step))
  else:
    runs.append(embed_test_set(args.workdir, args.checkpoint, args.label, args.max_images))
  for r in runs:
    print(f"{r.label}: symmetric KL between the modalities' diagonal Gaussians "
          f"{embeddings.modality_stats(r).sym_kl:.4g}")
  fig = embeddings.plot_figure(runs, num_ids=args.num_ids, tsne=use_tsne)
  out = fileio.as_path(args.out or fileio.as_path(args.workdir) / "plots" / "embeddings.png")
  out.parent.mkdir(parents=True, exist_ok=True)
  with out.open("wb") as f:
    fig.savefig(f, format=out.suffix.lstrip(".") or "png")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  plt.close(fig)
  print(f"Wrote {out}.")
  return str(out)


if __name__ == "__main__":
  sys.exit(cli.run_cli(main))
