"""The TFDS builder of a dataset, made from what its module declares (`dataset.TfdsLayout`).

One builder class per dataset, named as the dataset declares (`sysu_mm01`,
`regdb`, ...); one builder config per image size and encoding, and per split
for datasets with numbered splits (`trial1_288x144_png`). Splits: `train`
(the training records, visible then infrared in the reader's order) and the
dataset's test splits. Imports TensorFlow Datasets: only when preparing.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from vireid_jax.data.dataset import Dataset
from vireid_jax.data.tensorflow_setup import quiet_tensorflow
from vireid_jax.data.tfds_builders import (DEFAULT_ENCODING, DEFAULT_IMAGE_SIZE, VERSION,
                                           config_name, describe_download, examples,
                                           record_features)

quiet_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

tfds.disable_progress_bar()


@dataclasses.dataclass
class PreparedConfig(tfds.core.BuilderConfig):
  """One prepared image size and encoding (and split, for datasets with numbered splits)."""
  image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
  encoding: str = DEFAULT_ENCODING      # jpeg | png
  trial: int | None = None


def make_config(image_size, encoding: str = DEFAULT_ENCODING,
                trial: int | None = None) -> PreparedConfig:
  what = f"Split {trial}, images" if trial is not None else "Images"
  return PreparedConfig(name=config_name(image_size, encoding, trial),
                        image_size=tuple(int(s) for s in image_size), encoding=encoding,
                        trial=None if trial is None else int(trial),
                        description=f"{what} resized to {tuple(image_size)}, stored as {encoding}.")


class _Prepared(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A dataset's manual download, resized once; `DATASET` says which dataset."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "2.0.0": "Images resized once to the config's size; reader order kept."}
  DATASET: Dataset

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DATASET.tfds.description,
        features=record_features(self.builder_config.image_size, self.builder_config.encoding),
        homepage=self.DATASET.tfds.homepage,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    config, dataset = self.builder_config, self.DATASET
    train = dataset.load_train(root, config.trial)
    test = dataset.load_test(root, config.trial)
    extra = dict(dataset.tfds.test_metadata(test))
    if config.trial is not None:
      extra["trial"] = config.trial
    self.info.metadata.update(describe_download(root, config, dataset.name, **extra))
    train_records = train.visible + train.infrared
    generate = functools.partial(self._generate_examples, root)
    splits = {"train": generate(train_records, [train.class_pids[r.label] for r in train_records],
                                for_training=True)}
    for name, (records, person_ids) in dataset.tfds.test_splits(test).items():
      splits[name] = generate(records, person_ids, for_training=False)
    return splits

  def _generate_examples(self, root, records, person_ids, for_training):
    yield from examples(root, records, person_ids, self.builder_config, for_training)


@functools.lru_cache(maxsize=None)
def builder_class(dataset: Dataset) -> type:
  """The builder of `dataset` (made once per process: TFDS registers it by name)."""
  layout = dataset.tfds
  configs = ([make_config(DEFAULT_IMAGE_SIZE, DEFAULT_ENCODING, t) for t in dataset.splits]
             if dataset.splits else [make_config(DEFAULT_IMAGE_SIZE)])
  return type(layout.builder_name, (_Prepared,), {
      "name": layout.builder_name, "DATASET": dataset, "BUILDER_CONFIGS": configs,
      "MANUAL_DOWNLOAD_INSTRUCTIONS": layout.instructions, "__module__": __name__,
      "__doc__": layout.description})


def builders(dataset: Dataset, data_dir: str, image_size, encoding: str, trials=()) -> list:
  """The builders of `dataset` at `image_size` (one per numbered split in `trials`)."""
  cls = builder_class(dataset)
  configs = ([make_config(image_size, encoding, t) for t in trials] if dataset.splits
             else [make_config(image_size, encoding)])
  # A predefined config (the default size) must be named, not passed as a new object.
  return [cls(data_dir=data_dir, config=c.name if c.name in cls.builder_configs else c)
          for c in configs]
