"""Train and test sets from prepared TFDS records (`--config.data.source=tfds`).

`python -m vireid_jax.data.prepare_tfds` writes them once; this module reads
them back into the same records as the raw-file readers (same order, labels,
cameras and original paths as keys) plus an `EncodedImages` store with the
pixels. Datasets are found by `data.tfds_dir`, the dataset and
`data.image_size`; records prepared at another size are refused with the
command that prepares the right one.
"""

from __future__ import annotations

import functools
import os

import ml_collections

from vireid_jax.data import registry
from vireid_jax.data.image_store import EncodedImages
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet
from vireid_jax.data.tensorflow_setup import import_tf
from vireid_jax.data.tfds_builders import ENCODINGS, VERSION, config_name
from vireid_jax.errors import DataError


@functools.lru_cache(maxsize=None)
def import_tfds():
  """TensorFlow Datasets, with TensorFlow quiet and on the CPU."""
  import_tf()   # quiet, CPU-only TensorFlow first
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  return tfds


def prepare_command(layout: str, image_size, data_dir: str, trial: int | None = None) -> str:
  trial_flag = f" --trials={trial}" if registry.get(layout).splits else ""
  return (f"python -m vireid_jax.data.prepare_tfds --dataset={layout} --manual_dir=ROOT "
          f"--data_dir={data_dir} --image_size={image_size[0]},{image_size[1]}{trial_flag}")


def builder_dir(data_dir: str, layout: str, image_size, trial: int | None = None) -> str:
  """The folder of the prepared dataset at `image_size` (PNG, lossless, over JPEG)."""
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  dataset = registry.get(layout)
  base = os.path.join(data_dir, dataset.tfds.builder_name)
  trial = dataset.split_of(trial) if trial is not None else None
  for encoding in ENCODINGS:
    folder = os.path.join(base, config_name(image_size, encoding, trial), VERSION)
    if os.path.isfile(os.path.join(folder, "dataset_info.json")):
      return folder
  prefix = f"trial{trial}_" if trial is not None else ""
  names = os.listdir(base) if os.path.isdir(base) else ()
  prepared = sorted(
      name[len(prefix):].rsplit("_", 1)[0] for name in names
      if name.startswith(prefix) and os.path.isfile(os.path.join(base, name, VERSION,
                                                                 "dataset_info.json")))
  what = f"{layout}" + (f" trial {trial}" if trial is not None else "")
  size = f"{image_size[0]}x{image_size[1]}"
  found = (f" It holds {what} prepared at {', '.join(dict.fromkeys(prepared))} only: set "
           f"--config.data.image_size to one of those, or prepare {size}."
           if prepared else "")
  raise FileNotFoundError(
      f"No TFDS records of {what} at image size {size} in {data_dir} "
      f"(--config.data.tfds_dir).{found} Prepare them once with: "
      f"{prepare_command(layout, image_size, data_dir, trial)}")


@functools.lru_cache(maxsize=None)
def read_split(folder: str, split: str):
  """(metadata, rows sorted by index, EncodedImages) of one split; read once per process.

  rows: dicts with path, label, person_id, camera, modality (numpy scalars
  turned into ints). Images are not decoded. Cached: the evaluation's image
  store and the test records share one read.
  """
  tfds = import_tfds()
  builder = tfds.builder_from_directory(folder)
  meta = dict(builder.info.metadata)
  root = meta["manual_dir"]
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={"image": tfds.decode.SkipDecoding()})
  rows, encoded = [], {}
  for batch in tfds.as_numpy(ds.batch(1024)):
    for i in range(len(batch["index"])):
      path = os.path.join(root, batch["file_name"][i].decode())
      rows.append({"index": int(batch["index"][i]), "path": path,
                   "label": int(batch["label"][i]), "person_id": int(batch["person_id"][i]),
                   "camera": int(batch["camera"][i]), "modality": int(batch["modality"][i])})
      encoded[path] = batch["image"][i]
  rows.sort(key=lambda r: r["index"])
  if [r["index"] for r in rows] != list(range(len(rows))):
    raise DataError(f"The {split!r} split of {folder} is incomplete (its example indices have "
                    "gaps): prepare the dataset again.")
  return meta, tuple(rows), EncodedImages(meta["image_size"], encoded, origin=folder)


def _records(rows) -> tuple[ImageRecord, ...]:
  return tuple(ImageRecord(r["path"], r["label"], r["camera"], r["modality"]) for r in rows)


def _folder(data_cfg: ml_collections.ConfigDict) -> tuple[str, str]:
  """(layout, builder folder) for the config, checking synthetic vs real data."""
  synthetic = data_cfg.name == registry.SYNTHETIC
  layout = data_cfg.synthetic_layout if synthetic else data_cfg.name
  if layout not in registry.DATASETS:
    raise ValueError(f"data.source=tfds reads the records of a dataset "
                     f"({', '.join(registry.names())}), not data.name={data_cfg.name!r}.")
  if not data_cfg.tfds_dir:
    raise FileNotFoundError(
        "data.source=tfds needs --config.data.tfds_dir=DATA_DIR, the folder the records were "
        "prepared into: " + prepare_command(layout, tuple(data_cfg.image_size), "DATA_DIR",
                                            int(data_cfg.trial)))
  folder = builder_dir(data_cfg.tfds_dir, layout, tuple(data_cfg.image_size), int(data_cfg.trial))
  meta = _metadata(folder)
  if synthetic and not meta.get("synthetic"):
    raise DataError(f"{folder} was prepared from a real download ({meta.get('manual_dir')}), "
                    f"but data.name=synthetic: set --config.data.name={layout}.")
  if not synthetic and meta.get("synthetic"):
    raise DataError(
        f"{folder} was prepared from a synthetic dataset ({meta.get('manual_dir')}), but "
        f"data.name={data_cfg.name}: set --config.data.name=synthetic "
        f"--config.data.synthetic_layout={layout}, or prepare the real download into another "
        "--config.data.tfds_dir.")
  return layout, folder


@functools.lru_cache(maxsize=None)
def _metadata(folder: str) -> dict:
  return dict(import_tfds().builder_from_directory(folder).info.metadata)


def load_train_set(data_cfg: ml_collections.ConfigDict) -> TrainSet:
  """The training records of the prepared dataset, with their images."""
  _, folder = _folder(data_cfg)
  _, rows, images = read_split(folder, "train")
  records = _records(rows)
  visible = tuple(r for r in records if r.modality == VISIBLE)
  infrared = tuple(r for r in records if r.modality == INFRARED)
  class_pids = {}
  for r in rows:
    class_pids.setdefault(r["label"], r["person_id"])
  num_classes = len(class_pids)
  if sorted(class_pids) != list(range(num_classes)) or not visible or not infrared:
    raise DataError(f"The train split of {folder} is not a training set (labels 0..C-1 in both "
                    "modalities): prepare the dataset again.")
  return TrainSet(visible=visible, infrared=infrared, num_classes=num_classes,
                  class_pids=tuple(class_pids[c] for c in range(num_classes)), images=images)


@functools.lru_cache(maxsize=None)
def _test_splits(folder: str) -> tuple[str, ...]:
  """The test splits of the prepared dataset: every split but `train`."""
  return tuple(sorted(name for name in import_tfds().builder_from_directory(folder).info.splits
                      if name != "train"))


def load_test_set(data_cfg: ml_collections.ConfigDict):
  """(layout, test set) of the prepared dataset, as the dataset's reader gives it."""
  layout, folder = _folder(data_cfg)
  records = {name: _records(read_split(folder, name)[1]) for name in _test_splits(folder)}
  return layout, registry.get(layout).tfds.test_set(records, _metadata(folder))


def test_images(data_cfg: ml_collections.ConfigDict) -> EncodedImages:
  """The images of the test splits, for the evaluation's extractor."""
  _, folder = _folder(data_cfg)
  return EncodedImages.merge([read_split(folder, name)[2] for name in _test_splits(folder)])

