"""TFDS builder `sysu_mm01`: SYSU-MM01 from a manual download, resized once.

Splits: `train` (train + val ids, label = class 0..394, visible then infrared
records in the reader's order), `query` (every IR image of the test ids, label
= person id) and `gallery` (every RGB image of the test ids, label = person id,
grouped by (person id, camera)). Single-/multi-shot galleries are drawn at
evaluation time from `gallery`; the test ids are in `info.metadata`.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from vireid_jax.data import sysu
from vireid_jax.data.records import VISIBLE, ImageRecord
from vireid_jax.data.tfds_builders import (DEFAULT_ENCODING, DEFAULT_IMAGE_SIZE, VERSION,
                                           config_name,
                                           describe_download, examples, record_features)
from vireid_jax.data.tensorflow_setup import quiet_tensorflow

quiet_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

tfds.disable_progress_bar()


@dataclasses.dataclass
class SysuConfig(tfds.core.BuilderConfig):
  """One prepared image size and encoding."""
  image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
  encoding: str = DEFAULT_ENCODING      # jpeg | png


def make_config(image_size, encoding: str = DEFAULT_ENCODING) -> SysuConfig:
  return SysuConfig(name=config_name(image_size, encoding),
                    image_size=tuple(int(s) for s in image_size), encoding=encoding,
                    description=f"Images resized to {tuple(image_size)}, stored as {encoding}.")


class SysuMm01(tfds.core.GeneratorBasedBuilder):
  """SYSU-MM01 visible-infrared person re-identification."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "2.0.0": "Images resized once to the config's size; reader order kept."}
  BUILDER_CONFIGS = [make_config(DEFAULT_IMAGE_SIZE)]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Request SYSU-MM01 from the authors (https://github.com/wuancong/SYSU-MM01) and unpack "
      "it so that manual_dir contains cam1 ... cam6 and exp/ (train_id.txt, val_id.txt, "
      "test_id.txt). Then run python -m vireid_jax.data.prepare_tfds --dataset=sysu "
      "--manual_dir=ROOT --data_dir=DATA_DIR.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("SYSU-MM01: 491 identities seen by 4 RGB and 2 near-infrared cameras. "
                     "label is the training class (train) or the person id (query, gallery)."),
        features=record_features(self.builder_config.image_size, self.builder_config.encoding),
        homepage="https://github.com/wuancong/SYSU-MM01",
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    train = sysu.load_train(root)
    test = sysu.load_test(root)
    gallery = [ImageRecord(p, pid, cam, VISIBLE)
               for (pid, cam), paths in test.gallery_files.items() for p in paths]
    self.info.metadata.update(describe_download(root, self.builder_config, "sysu",
                                                test_ids=list(test.test_ids)))
    train_records = train.visible + train.infrared
    train_pids = [train.class_pids[r.label] for r in train_records]
    generate = functools.partial(self._generate_examples, root)
    return {
        "train": generate(train_records, train_pids, for_training=True),
        "query": generate(test.query, [r.label for r in test.query], for_training=False),
        "gallery": generate(gallery, [r.label for r in gallery], for_training=False),
    }

  def _generate_examples(self, root, records, person_ids, for_training):
    yield from examples(root, records, person_ids, self.builder_config, for_training)
