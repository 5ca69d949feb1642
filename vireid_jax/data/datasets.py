"""Which dataset a config names, where it is, and its train/test records.

`data.name` is one of sysu | regdb | synthetic | fake. `synthetic` generates
the synthetic dataset (in the SYSU-MM01 or RegDB layout, `data.synthetic_layout`)
into the workdir the first time and then reads it like the real one, through
the same readers, so the demo exercises exactly the code real data goes through.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import ml_collections
from absl import logging

from vireid_jax.data.records import TrainSet

DATASETS = ("sysu", "regdb", "synthetic", "fake")


def layout_and_root(data_cfg: ml_collections.ConfigDict, workdir: str) -> tuple[str, str]:
  """Returns (layout, root): layout is "sysu" or "regdb"."""
  name = data_cfg.name
  if name in ("sysu", "regdb"):
    return name, os.path.abspath(os.path.expanduser(data_cfg.root)) if data_cfg.root else ""
  if name == "synthetic":
    layout = data_cfg.synthetic_layout
    if layout not in ("sysu", "regdb"):
      raise ValueError(f"data.synthetic_layout must be sysu or regdb, got {layout!r}.")
    root = data_cfg.root or os.path.join(workdir, f"synthetic_{layout}")
    ensure_synthetic(root, layout, int(data_cfg.synthetic_num_ids), seed=0)
    return layout, os.path.abspath(root)
  raise ValueError(f"data.name={name!r} has no files; expected one of {DATASETS}.")


def ensure_synthetic(root: str, layout: str, num_ids: int, seed: int = 0) -> None:
  """Generates the synthetic dataset at `root` unless it is already complete.

  Written into a temporary sibling folder and renamed into place, so an
  interrupted generation never leaves a half-written dataset behind.
  """
  marker = os.path.join(root, ".complete")
  if os.path.exists(marker):
    return
  from vireid_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  parent = os.path.dirname(os.path.abspath(root))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".synthetic_tmp_", dir=parent)
  logging.info("Generating the synthetic %s-layout dataset (%d ids) in %s", layout, num_ids, root)
  synthetic.generate(layout, tmp, num_ids=num_ids, seed=seed)
  with open(os.path.join(tmp, ".complete"), "w") as f:
    f.write(f"layout={layout} num_ids={num_ids} seed={seed}\n")
  if os.path.exists(root):
    if os.path.exists(marker):   # another process finished first
      shutil.rmtree(tmp, ignore_errors=True)
      return
    shutil.rmtree(root)
  os.replace(tmp, root)


def load_train_set(data_cfg: ml_collections.ConfigDict, workdir: str) -> TrainSet:
  layout, root = layout_and_root(data_cfg, workdir)
  if layout == "sysu":
    from vireid_jax.data import sysu  # pylint: disable=g-import-not-at-top
    return sysu.load_train(root)
  from vireid_jax.data import regdb  # pylint: disable=g-import-not-at-top
  return regdb.load_train(root, int(data_cfg.trial))


def load_test_set(data_cfg: ml_collections.ConfigDict, workdir: str):
  """Returns (layout, test set): a SysuTestSet or a RegdbTestSet."""
  layout, root = layout_and_root(data_cfg, workdir)
  if layout == "sysu":
    from vireid_jax.data import sysu  # pylint: disable=g-import-not-at-top
    return layout, sysu.load_test(root)
  from vireid_jax.data import regdb  # pylint: disable=g-import-not-at-top
  return layout, regdb.load_test(root, int(data_cfg.trial))
