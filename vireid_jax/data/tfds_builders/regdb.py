"""TFDS builder `regdb`: RegDB from a manual download, one config per trial.

Configs `trial1` ... `trial10`; splits `train` (label = class 0..205 as in the
idx file), `test_visible` and `test_thermal` (label as in the idx file).
"""

from __future__ import annotations

import dataclasses
import os

from vireid_jax.data import regdb
from vireid_jax.data.tfds_builders import image_bytes, quiet_tensorflow, record_features, relative

quiet_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

tfds.disable_progress_bar()


@dataclasses.dataclass
class RegdbConfig(tfds.core.BuilderConfig):
  trial: int = 1


class Regdb(tfds.core.GeneratorBasedBuilder):
  """RegDB visible-thermal person re-identification (10 train/test trials)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [RegdbConfig(name=f"trial{t}", trial=t,
                                 description=f"Train/test split of idx/*_{t}.txt.")
                     for t in regdb.TRIALS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Request RegDB from the Dongguk University dataset page (http://dm.dgu.edu/link.html) "
      "and unpack it so that manual_dir contains Visible/, Thermal/ and idx/ with the 10-trial "
      "split files (train_visible_{t}.txt, train_thermal_{t}.txt, test_visible_{t}.txt, "
      "test_thermal_{t}.txt). Then pass "
      "download_config=tfds.download.DownloadConfig(manual_dir=ROOT).")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("RegDB: 412 identities, 10 co-registered visible and thermal images each. "
                     "label is as written in the idx files."),
        features=record_features(),
        supervised_keys=("image", "label"),
        homepage="http://dm.dgu.edu/link.html",
    )

  def _split_generators(self, dl_manager):
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    trial = self.builder_config.trial
    train = regdb.load_train(root, trial)
    test = regdb.load_test(root, trial)
    return {
        "train": self._generate_examples(root, train.visible + train.infrared, train.class_pids),
        "test_visible": self._generate_examples(root, test.visible, None),
        "test_thermal": self._generate_examples(root, test.thermal, None),
    }

  def _generate_examples(self, root, records, class_pids):
    for r in records:
      name = relative(root, r.path)
      if class_pids is not None:
        person_id = class_pids[r.label]
      else:
        folder = regdb.folder_id(name)
        person_id = r.label if folder is None else folder
      yield name, {
          "image": image_bytes(r.path),
          "label": r.label,
          "person_id": person_id,
          "camera": r.camera,
          "modality": r.modality,
          "file_name": name,
      }

