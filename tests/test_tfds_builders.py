"""TFDS builders: built offline over tiny synthetic datasets, they hold the readers' records."""

import collections
import os

import numpy as np
import pytest

from vireid_jax.data import regdb, synthetic, sysu
from vireid_jax.data.images import load_image
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord

tfds = pytest.importorskip("tensorflow_datasets")

# pylint: disable=g-import-not-at-top,wrong-import-position
from vireid_jax.data.tfds_builders import regdb as regdb_builder  # noqa: E402
from vireid_jax.data.tfds_builders import sysu_mm01  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position


def _examples(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def _by_name(examples):
  return {ex["file_name"].decode(): ex for ex in examples}


def _expect(root, records, class_pids=None):
  return {os.path.relpath(r.path, root).replace(os.sep, "/"):
          (r.label, class_pids[r.label] if class_pids else r.label, r.camera, r.modality)
          for r in records}


def _got(examples):
  return {name: (int(ex["label"]), int(ex["person_id"]), int(ex["camera"]), int(ex["modality"]))
          for name, ex in _by_name(examples).items()}


def test_sysu_mm01_builder(tmp_path):
  root = str(tmp_path / "manual")
  synthetic.generate("sysu", root, num_ids=6, seed=2, images_per_cam=(1, 2))
  builder = tfds.builder("sysu_mm01", data_dir=str(tmp_path / "tfds"))
  assert isinstance(builder, sysu_mm01.SysuMm01)
  assert "SYSU-MM01" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))

  train, test = sysu.load_train(root), sysu.load_test(root)
  gallery = [ImageRecord(p, pid, cam, VISIBLE)
             for (pid, cam), paths in test.gallery_files.items() for p in paths]
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert splits == {"train": train.num_images, "query": len(test.query), "gallery": len(gallery)}

  train_ex = _examples(builder, "train")
  assert _got(train_ex) == _expect(root, train.visible + train.infrared, train.class_pids)
  assert _got(_examples(builder, "query")) == _expect(root, test.query)
  assert _got(_examples(builder, "gallery")) == _expect(root, gallery)
  # Both single-channel (IR) and RGB files come out as 3-channel images equal to load_image's.
  by_name = _by_name(train_ex)
  for r in (train.visible[0], train.infrared[0]):
    img = by_name[os.path.relpath(r.path, root)]["image"]
    assert img.shape == (128, 64, 3) and img.dtype == np.uint8
    if r.modality == INFRARED:   # converted losslessly
      assert np.array_equal(img, load_image(r.path))


def test_regdb_builder(tmp_path):
  root = str(tmp_path / "manual")
  synthetic.generate("regdb", root, num_ids=4, seed=2, images_per_cam=(2, 2))
  names = [c.name for c in regdb_builder.Regdb.BUILDER_CONFIGS]
  assert names == [f"trial{t}" for t in range(1, 11)]
  for trial in (1, 2):
    builder = tfds.builder(f"regdb/trial{trial}", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))
    train, test = regdb.load_train(root, trial), regdb.load_test(root, trial)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    assert splits == {"train": 8, "test_visible": 4, "test_thermal": 4}
    train_ex = _examples(builder, "train")
    assert _got(train_ex) == _expect(root, train.visible + train.infrared, train.class_pids)
    got_test = _got(_examples(builder, "test_thermal"))
    expect_test = _expect(root, test.thermal)
    assert {k: v[0] for k, v in got_test.items()} == {k: v[0] for k, v in expect_test.items()}
    # person_id of a test image is its folder id.
    assert all(v[1] == int(k.split("/")[1]) for k, v in got_test.items())
    shapes = collections.Counter(ex["image"].shape for ex in train_ex)
    assert shapes == {(128, 64, 3): 8}
