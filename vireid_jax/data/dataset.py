"""What a dataset module declares: everything the rest of the code may know about a dataset.

Each dataset is one package under `vireid_jax/data/` that builds one `Dataset`:
its readers, test protocol (`protocol.Suite`), default image size, check,
TFDS records (`TfdsLayout`) and synthetic layout (`SyntheticLayout`).
`vireid_jax.data.registry` maps names to them; no other module knows a
dataset by its name, so adding one is its package and one registry line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from vireid_jax.data.protocol import Suite
from vireid_jax.data.records import ImageRecord, TrainSet


@dataclasses.dataclass(frozen=True)
class SyntheticLayout:
  """How the synthetic generator writes the dataset's on-disk layout.

  Attributes:
    write: (out, num_ids, seed, lo, hi, height, width, *, workers, **split) writes
      every image and list file into the empty folder `out`; byte-identical
      output for any number of worker processes.
    images_per_cam: default (min, max) images per (identity, camera).
    min_ids: the fewest identities the layout can split.
    split: (num_ids, test_ids, val_ids) -> the split options to pass to `write`
      (checked); None: the layout takes no split options.
    sheet_cells: (root, rows) -> [(row label, [(column label, path or None)])],
      the sample sheet's cells.
  """
  write: Callable[..., None]
  images_per_cam: tuple[int, int]
  min_ids: int
  sheet_cells: Callable[[str, int], list]
  split: Callable[[int, int | None, int | None], dict] | None = None


@dataclasses.dataclass(frozen=True)
class TfdsLayout:
  """The dataset as TFDS records (`python -m vireid_jax.data.prepare_tfds`).

  Attributes:
    builder_name: the TFDS builder (and folder) name.
    description, homepage, instructions: the builder's info and its manual
      download instructions.
    test_splits: test set -> {split name: (records, person ids)}, in the order
      the records are read back.
    test_metadata: test set -> what else rebuilding it needs (JSON).
    test_set: ({split name: records}, metadata) -> the test set again.
  """
  builder_name: str
  description: str
  homepage: str
  instructions: str
  test_splits: Callable[[Any], dict[str, tuple[Sequence[ImageRecord], Sequence[int]]]]
  test_set: Callable[[dict[str, tuple[ImageRecord, ...]], dict], Any]
  test_metadata: Callable[[Any], dict] = lambda test_set: {}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One dataset, as its module declares it.

  Attributes:
    name: `data.name` (and the synthetic layout's name).
    title: how messages and tables name it ("SYSU-MM01").
    image_size: (height, width) its configs train and test at.
    how_to_get: where the data comes from and how ROOT must look.
    load_train, load_test: (ROOT, split or None) -> the training set / the test
      set; both read and check their lists.
    test_paths: test set -> ((what, paths), ...) for the start-up check.
    test_lists: which files list the test set (for messages).
    suite: the test protocol.
    scan: (ROOT, splits, decode, report) adds the dataset's findings to a
      `scan.Report` (`python -m vireid_jax.data.check`).
    tfds: the TFDS records.
    synthetic: the synthetic layout, or None.
    splits: numbered train/test splits chosen by `data.trial` (one model each); () if one.
    config_problems: config -> one line per setting this dataset cannot use.
    validation_ids: ROOT -> the training identities the dataset itself sets aside
      for validation (`evals` with `val`); None: a seeded draw (`val.fraction`).
  """
  name: str
  title: str
  image_size: tuple[int, int]
  how_to_get: str
  load_train: Callable[[str, int | None], TrainSet]
  load_test: Callable[[str, int | None], Any]
  test_paths: Callable[[Any], tuple[tuple[str, list[str]], ...]]
  test_lists: str
  suite: Suite
  scan: Callable[..., None]
  tfds: TfdsLayout
  synthetic: SyntheticLayout | None = None
  splits: tuple[int, ...] = ()
  config_problems: Callable[[Any], list[str]] = lambda config: []
  validation_ids: Callable[[str], tuple[int, ...]] | None = None

  def split_of(self, trial) -> int | None:
    """The split `data.trial` names, for datasets with splits; None otherwise."""
    return int(trial) if self.splits else None
