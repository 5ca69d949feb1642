"""TFDS builder `regdb`: RegDB from a manual download, one config per trial and size.

Configs `trial{t}_{H}x{W}` (t = 1..10); splits `train` (label = class as in the
idx files, visible then thermal records in the reader's order), `test_visible`
and `test_thermal` (label as in the idx files; person_id = the image's folder id).
"""

from __future__ import annotations

import dataclasses
import functools
import os

from vireid_jax.data import regdb
from vireid_jax.data.tfds_builders import (DEFAULT_ENCODING, DEFAULT_IMAGE_SIZE, VERSION,
                                           config_name, describe_download, examples,
                                           record_features, relative)
from vireid_jax.data.tensorflow_setup import quiet_tensorflow

quiet_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

tfds.disable_progress_bar()


@dataclasses.dataclass
class RegdbConfig(tfds.core.BuilderConfig):
  """One trial's split at one prepared image size and encoding."""
  image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
  encoding: str = DEFAULT_ENCODING      # jpeg | png
  trial: int = 1


def make_config(trial: int, image_size, encoding: str = DEFAULT_ENCODING) -> RegdbConfig:
  return RegdbConfig(name=config_name(image_size, encoding, trial), trial=int(trial),
                     image_size=tuple(int(s) for s in image_size), encoding=encoding,
                     description=f"Split idx/*_{trial}.txt, images resized to "
                                 f"{tuple(image_size)}, stored as {encoding}.")


class Regdb(tfds.core.GeneratorBasedBuilder):
  """RegDB visible-thermal person re-identification (10 train/test trials)."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "2.0.0": "Images resized once to the config's size; reader order kept."}
  BUILDER_CONFIGS = [make_config(t, DEFAULT_IMAGE_SIZE) for t in regdb.TRIALS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Request RegDB from the Dongguk University dataset page (http://dm.dgu.edu/link.html) "
      "and unpack it so that manual_dir contains Visible/, Thermal/ and idx/ with the 10-trial "
      "split files (train_visible_{t}.txt, train_thermal_{t}.txt, test_visible_{t}.txt, "
      "test_thermal_{t}.txt). Then run python -m vireid_jax.data.prepare_tfds --dataset=regdb "
      "--manual_dir=ROOT --data_dir=DATA_DIR.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("RegDB: 412 identities, 10 co-registered visible and thermal images each. "
                     "label is as written in the idx files."),
        features=record_features(self.builder_config.image_size, self.builder_config.encoding),
        homepage="http://dm.dgu.edu/link.html",
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    config = self.builder_config
    train = regdb.load_train(root, config.trial)
    test = regdb.load_test(root, config.trial)
    self.info.metadata.update(describe_download(root, config, "regdb", trial=config.trial))

    def folder_ids(records):
      ids = [regdb.folder_id(relative(root, r.path)) for r in records]
      return [r.label if pid is None else pid for r, pid in zip(records, ids)]

    train_records = train.visible + train.infrared
    train_pids = [train.class_pids[r.label] for r in train_records]
    generate = functools.partial(self._generate_examples, root)
    return {
        "train": generate(train_records, train_pids, for_training=True),
        "test_visible": generate(test.visible, folder_ids(test.visible), for_training=False),
        "test_thermal": generate(test.thermal, folder_ids(test.thermal), for_training=False),
    }

  def _generate_examples(self, root, records, person_ids, for_training):
    yield from examples(root, records, person_ids, self.builder_config, for_training)
