"""TFDS source: records prepared once from the synthetic SYSU/RegDB layouts give the same
records, and (PNG records) the same training batches, test images and protocol results as
reading the files; JPEG records (the default) differ by JPEG's rounding only."""

import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax import config_defaults
from vireid_jax.data import datasets, images, pipeline, prepare_tfds, registry, tfds_source
from vireid_jax.errors import DataError
from vireid_jax.evaluation import features, protocols

from conftest import prepare_tiny_tfds  # pylint: disable=wrong-import-order

tfds = pytest.importorskip("tensorflow_datasets")

SIZE = (64, 32)     # the files are 128x64: every image is resized, once


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  return prepare_tiny_tfds(str(tmp_path_factory.mktemp("tfds_source")), SIZE, encoding="png")


def data_config(prepared, layout, source, **changes):
  c = config_defaults.base_config()
  c.data.name, c.data.synthetic_layout = "synthetic", layout
  c.data.root = prepared.roots[layout]
  c.data.source, c.data.tfds_dir = source, prepared.tfds_dir
  c.data.image_size = SIZE
  c.data.pad, c.data.flip, c.data.channel_augment, c.data.random_erasing = 3, True, 0.5, 0.5
  c.data.num_parallel_calls = 2
  c.batch.identities, c.batch.instances = 2, 2
  for key, value in changes.items():
    setattr(c.data, key, value)
  return c


@pytest.mark.parametrize("layout", ["sysu", "regdb"])
def test_same_records(prepared, layout, tmp_path):
  files, tfds_cfg = (data_config(prepared, layout, s).data for s in ("files", "tfds"))
  raw, from_tfds = (datasets.load_train_set(c, str(tmp_path)) for c in (files, tfds_cfg))
  assert from_tfds == raw and raw.num_images > 10      # records, order, labels, class ids
  assert raw.images is None and len(from_tfds.images) == raw.num_images
  assert datasets.load_test_set(tfds_cfg, str(tmp_path)) == datasets.load_test_set(
      files, str(tmp_path))


@pytest.mark.parametrize("layout", ["sysu", "regdb"])
@pytest.mark.parametrize("cache", [False, True])
def test_same_training_batches(prepared, layout, cache, tmp_path):
  """Step s from either source is the same (sampler draws, resize, augmentation, pixels)."""
  batches = {}
  for source in ("files", "tfds"):
    c = data_config(prepared, layout, source, cache_decoded=cache)
    train_set = datasets.load_train_set(c.data, str(tmp_path))
    batches[source] = list(pipeline.make_train_iterator(train_set, c.data, c.batch, seed=3,
                                                        start_step=5, num_steps=2))
  for a, b in zip(batches["files"], batches["tfds"]):
    assert a.keys() == b.keys() and a["visible"].shape == (4,) + SIZE + (3,)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def embed(weights, x, modality):
  """A fixed embedding of the pixels: any difference in the images shows in the results."""
  del weights, modality
  pooled = x.reshape(x.shape[0], 8, SIZE[0] // 8, 4, SIZE[1] // 4, 3).mean(axis=(2, 4))
  return pooled.reshape(x.shape[0], -1) + 0.0 * jnp.sum(x)


@pytest.mark.parametrize("layout", ["sysu", "regdb"])
def test_same_test_images_and_protocol_results(prepared, layout, tmp_path):
  results = {}
  for source in ("files", "tfds"):
    c = data_config(prepared, layout, source).data
    _, test_set = datasets.load_test_set(c, str(tmp_path))
    extract = features.make_extractor(embed, SIZE, 8, image_source=datasets.test_image_source(c))
    results[source] = protocols.evaluate(registry.get(layout).suite, test_set, extract, trials=2)
  assert results["files"] == results["tfds"] and results["files"]
  store = datasets.test_image_source(data_config(prepared, layout, "tfds").data)
  path = next(iter(prepared.test_paths(layout)))
  np.testing.assert_array_equal(store.load(path, SIZE), images.load_image(path, SIZE))


def test_jpeg_records_are_close_and_png_is_preferred(prepared, tmp_path):
  """JPEG (quality 95, the default) records differ from the files by JPEG's rounding only."""
  jpeg_dir = str(tmp_path / "jpeg")
  prepare_tfds.prepare("sysu", prepared.roots["sysu"], jpeg_dir, SIZE)
  c = data_config(prepared, "sysu", "tfds")
  png_store = datasets.load_train_set(c.data, str(tmp_path)).images
  c.data.tfds_dir = jpeg_dir
  train_set = datasets.load_train_set(c.data, str(tmp_path))
  paths = [r.path for r in train_set.visible + train_set.infrared]
  exact = pipeline.decode_files(paths, SIZE, store=png_store).astype(np.int32)
  lossy = pipeline.decode_files(paths, SIZE, store=train_set.images).astype(np.int32)
  error = np.abs(exact - lossy)
  assert 0 < error.mean() < 1.5 and np.percentile(error, 99) <= 8, (error.mean(), error.max())
  assert sum(map(len, train_set.images.encoded(paths))) < 0.6 * sum(
      map(len, png_store.encoded(paths)))
  # Both encodings in one data_dir: the loader takes the lossless one.
  shutil.copytree(os.path.join(jpeg_dir, "sysu_mm01"), os.path.join(tmp_path, "both",
                                                                     "sysu_mm01"))
  shutil.copytree(os.path.join(prepared.tfds_dir, "sysu_mm01"),
                  os.path.join(tmp_path, "both", "sysu_mm01"), dirs_exist_ok=True)
  assert tfds_source.builder_dir(str(tmp_path / "both"), "sysu", SIZE).endswith(
      f"{SIZE[0]}x{SIZE[1]}_png/{tfds_source.VERSION}")


def test_refusals(prepared, tmp_path):
  c = data_config(prepared, "sysu", "tfds")
  c.data.image_size = (96, 48)
  with pytest.raises(FileNotFoundError, match=r"(?s)image size 96x48.*prepared at 64x32 only.*"
                                              r"prepare_tfds --dataset=sysu .*--image_size=96,48"):
    datasets.load_train_set(c.data, str(tmp_path))
  c = data_config(prepared, "regdb", "tfds")
  c.data.trial = 2          # only trial 1 was prepared
  with pytest.raises(FileNotFoundError, match=r"regdb trial 2 .*--trials=2"):
    datasets.load_test_set(c.data, str(tmp_path))
  c = data_config(prepared, "sysu", "tfds")
  c.data.name = "sysu"      # synthetic records are never taken for the real dataset
  with pytest.raises(DataError, match="prepared from a synthetic dataset"):
    datasets.load_train_set(c.data, str(tmp_path))
  c.data.tfds_dir = ""
  with pytest.raises(ValueError, match="data.tfds_dir"):
    datasets.validate(c)
  # Preparing again: from the same download, nothing to do; from another, refused.
  folder = tfds_source.builder_dir(prepared.tfds_dir, "sysu", SIZE)
  mtime = os.path.getmtime(os.path.join(folder, "dataset_info.json"))
  assert prepare_tfds.prepare("sysu", prepared.roots["sysu"], prepared.tfds_dir, SIZE,
                              "png") == [folder]
  other = shutil.copytree(prepared.roots["sysu"], str(tmp_path / "other"))
  with pytest.raises(FileExistsError, match="already holds records prepared from"):
    prepare_tfds.prepare("sysu", other, prepared.tfds_dir, SIZE, "png")
  assert os.path.getmtime(os.path.join(folder, "dataset_info.json")) == mtime
  squatter = tmp_path / "data_dir" / "sysu_mm01" / f"{SIZE[0]}x{SIZE[1]}_jpeg" / tfds_source.VERSION
  squatter.mkdir(parents=True)
  (squatter / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="holds no prepared dataset"):
    prepare_tfds.prepare("sysu", prepared.roots["sysu"], str(tmp_path / "data_dir"), SIZE)
  assert os.listdir(squatter) == ["notes.txt"]


def test_check_test_set_reads_the_records(prepared, tmp_path):
  for layout in ("sysu", "regdb"):
    datasets.check_test_set(data_config(prepared, layout, "tfds").data, str(tmp_path))


def test_cli_arguments():
  assert prepare_tfds.parse_size("288,144") == (288, 144) == prepare_tfds.parse_size("288x144")
  assert prepare_tfds.parse_trials("all") == ()      # every split of the dataset
  assert prepare_tfds.parse_trials("2,5") == (2, 5)
  for bad in ("288", "a,b", "16,8"):
    with pytest.raises(Exception, match="HEIGHT,WIDTH|>= 32"):
      prepare_tfds.parse_size(bad)
  with pytest.raises(Exception, match="1..10"):
    prepare_tfds.parse_trials("0,11")


def test_builders_for_the_default_and_other_sizes(tmp_path):
  """The default size is a predefined config (TFDS refuses a look-alike); others are custom."""
  for size in ((288, 144), (96, 48)):
    sysu_builder, = prepare_tfds._builders("sysu", str(tmp_path), size, "png", (1,))
    regdb_builders = prepare_tfds._builders("regdb", str(tmp_path), size, "jpeg", (1, 10))
    assert sysu_builder.builder_config.image_size == size
    assert sysu_builder.builder_config.name == f"{size[0]}x{size[1]}_png"
    assert [b.builder_config.name for b in regdb_builders] == [
        f"trial1_{size[0]}x{size[1]}_jpeg", f"trial10_{size[0]}x{size[1]}_jpeg"]
    assert regdb_builders[1].builder_config.trial == 10
