"""The datasets the code knows: one line each. Each is a package that declares a `Dataset`.

`data.name` is one of these names, `synthetic` (one of their synthetic
layouts, generated) or `fake` (random batches). Everything else looks a
dataset up here instead of knowing it by name.
"""

from __future__ import annotations

from vireid_jax.data import llcm, regdb, sysu
from vireid_jax.data.dataset import Dataset

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    sysu.DATASET,
    regdb.DATASET,
    llcm.DATASET,
)}
# data.name values that are not a dataset of their own.
SYNTHETIC, FAKE = "synthetic", "fake"


def names() -> tuple[str, ...]:
  return tuple(DATASETS)


def get(name: str) -> Dataset:
  """The dataset called `name`; a ValueError listing the known ones otherwise."""
  if name not in DATASETS:
    raise ValueError(f"Unknown dataset {name!r}: use one of {', '.join(DATASETS)}.")
  return DATASETS[name]


def synthetic_layouts() -> tuple[str, ...]:
  """The datasets whose layout the synthetic generator writes."""
  return tuple(name for name, d in DATASETS.items() if d.synthetic is not None)


def for_label(label: str) -> Dataset | None:
  """The dataset a results file's "dataset" label names (`sysu`, `synthetic_sysu`, ...)."""
  name = str(label).removeprefix(f"{SYNTHETIC}_")
  return DATASETS.get(name)
