"""TFDS builder `sysu_mm01`: SYSU-MM01 from a manual download.

Splits: `train` (train + val ids, label = class 0..394), `query` (every IR image
of the test ids, label = person id) and `gallery` (every RGB image of the test
ids, label = person id). Single-/multi-shot galleries are drawn at evaluation
time from `gallery`, by (person_id, camera).
"""

from __future__ import annotations

import os

from vireid_jax.data import sysu
from vireid_jax.data.records import ImageRecord
from vireid_jax.data.tfds_builders import image_bytes, quiet_tensorflow, record_features, relative

quiet_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

tfds.disable_progress_bar()


class SysuMm01(tfds.core.GeneratorBasedBuilder):
  """SYSU-MM01 visible-infrared person re-identification."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Request SYSU-MM01 from the authors (https://github.com/wuancong/SYSU-MM01) and unpack "
      "it so that manual_dir contains cam1 ... cam6 and exp/ (train_id.txt, val_id.txt, "
      "test_id.txt). Then pass download_config=tfds.download.DownloadConfig(manual_dir=ROOT).")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("SYSU-MM01: 491 identities seen by 4 RGB and 2 near-infrared cameras. "
                     "label is the training class (train) or the person id (query, gallery)."),
        features=record_features(),
        supervised_keys=("image", "label"),
        homepage="https://github.com/wuancong/SYSU-MM01",
    )

  def _split_generators(self, dl_manager):
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    train = sysu.load_train(root)
    test = sysu.load_test(root)
    gallery = [ImageRecord(p, pid, cam, 0)
               for (pid, cam), paths in test.gallery_files.items() for p in paths]
    return {
        "train": self._generate_examples(root, train.visible + train.infrared, train.class_pids),
        "query": self._generate_examples(root, test.query, None),
        "gallery": self._generate_examples(root, tuple(gallery), None),
    }

  def _generate_examples(self, root, records, class_pids):
    for r in records:
      name = relative(root, r.path)
      yield name, {
          "image": image_bytes(r.path),
          "label": r.label,
          "person_id": class_pids[r.label] if class_pids is not None else r.label,
          "camera": r.camera,
          "modality": r.modality,
          "file_name": name,
      }
