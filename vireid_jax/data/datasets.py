"""Which dataset a config names, where its records and pixels come from.

`data.name` is a dataset of the registry, `synthetic` or `fake`. `synthetic`
generates the synthetic dataset (in the layout of the dataset
`data.synthetic_layout` names) into the workdir the first time and then reads
it like the real one, through the same readers, so the demo exercises exactly
the code real data goes through. Every dataset-specific step is the dataset
module's (`registry.get(name)`); nothing here knows a dataset by name.

`data.source` says where records and pixels come from: `files` reads the
dataset's folder (`data.root`); `tfds` reads the records that
`python -m vireid_jax.data.prepare_tfds` prepared once into `data.tfds_dir`
(same records, original paths as keys, pixels from an `EncodedImages` store).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import ml_collections
from absl import logging

from vireid_jax import config_defaults, fileio
from vireid_jax.data import registry, synthetic, validation
from vireid_jax.data.dataset import Dataset
from vireid_jax.data.image_store import EncodedImages
from vireid_jax.data.images import BadImageError
from vireid_jax.data.records import TrainSet
from vireid_jax.data.synthetic import marker as synthetic_marker
from vireid_jax.errors import ConfigError, DataError

SOURCES = ("files", "tfds")


def names() -> tuple[str, ...]:
  """Every `data.name`: the registry's datasets, synthetic and fake."""
  return registry.names() + (registry.SYNTHETIC, registry.FAKE)


def layout_name(data_cfg: ml_collections.ConfigDict) -> str:
  """The dataset whose layout and protocol the config's data has (synthetic: its layout)."""
  if data_cfg.name == registry.SYNTHETIC:
    name = data_cfg.synthetic_layout
    if name not in registry.synthetic_layouts():
      raise ValueError(f"data.synthetic_layout={name!r}: use one of "
                       f"{', '.join(registry.synthetic_layouts())}.")
    return name
  if data_cfg.name not in registry.DATASETS:
    raise ValueError(f"data.name={data_cfg.name!r} has no files; expected one of {names()}.")
  return data_cfg.name


def dataset_of(data_cfg: ml_collections.ConfigDict) -> Dataset:
  """The `Dataset` of the config's data (for data.name=synthetic: of its layout)."""
  return registry.get(layout_name(data_cfg))


def layout_and_root(data_cfg: ml_collections.ConfigDict, workdir: str) -> tuple[str, str]:
  """Returns (layout, root) of data.source=files: layout is the dataset's name.

  data.name=synthetic: the generated dataset, made on first use (`ensure_synthetic`).
  """
  layout = layout_name(data_cfg)
  if data_cfg.name != registry.SYNTHETIC:
    return layout, os.path.abspath(os.path.expanduser(data_cfg.root)) if data_cfg.root else ""
  if not data_cfg.root and fileio.is_remote(workdir):
    raise ConfigError(
        f"data.root='': the synthetic dataset is generated into the workdir by default, but "
        f"--workdir={workdir} is not a local folder. Give a local folder for it with "
        "--config.data.root=DIR (generated there if new or empty, reused afterwards).")
  root = os.path.abspath(os.path.expanduser(data_cfg.root or os.path.join(
      workdir, f"{registry.SYNTHETIC}_{layout}")))
  ensure_synthetic(root, layout, int(data_cfg.synthetic_num_ids), seed=0)
  return layout, root


def ensure_synthetic(root: str, layout: str, num_ids: int, seed: int = 0) -> None:
  """Makes `root` hold the synthetic dataset: reuses it, or generates it if `root` is new.

  Reuses a folder with the generator's completion marker (of the same layout;
  its own number of ids and seed win, with a warning if they differ from the
  config). Generates only where `root` does not exist or is an empty folder:
  into a temporary sibling folder, renamed into place when complete, so an
  interrupted generation never leaves a half-written dataset at `root`.
  Anything else at `root` is refused, untouched (FileExistsError).
  """
  settings = synthetic_marker.read_marker(root)
  if settings is not None:
    _check_reused(root, settings, layout, num_ids, seed)
    return
  if os.path.exists(root) and not (os.path.isdir(root) and not os.listdir(root)):
    raise FileExistsError(_not_ours_message(root, layout))
  parent = os.path.dirname(os.path.abspath(root))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".synthetic_tmp_", dir=parent)
  os.chmod(tmp, 0o755)      # mkdtemp's 0700 would hide the dataset from other users
  logging.info("Generating the synthetic %s-layout dataset (%d ids) in %s", layout, num_ids, root)
  try:
    synthetic.generate(layout, tmp, num_ids=num_ids, seed=seed)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)   # ours: made by mkdtemp above, never renamed
    raise
  try:
    os.replace(tmp, root)     # only onto a missing or empty folder
  except OSError:             # root got files meanwhile: another process, or someone else
    shutil.rmtree(tmp)        # ours (made above); root stays as it is
    settings = synthetic_marker.read_marker(root)
    if settings is None:
      raise FileExistsError(_not_ours_message(root, layout)) from None
    _check_reused(root, settings, layout, num_ids, seed)


def _not_ours_message(root: str, layout: str) -> str:
  return (f"{root!r} exists and was not made by the synthetic generator: did you mean "
          f"--config.data.name={layout} to train on it? Otherwise choose an empty or new "
          "--config.data.root (or leave it empty to use WORKDIR/synthetic_<layout>). Nothing in "
          f"{root!r} was changed.")


def _check_reused(root: str, settings: dict, layout: str, num_ids: int, seed: int) -> None:
  if settings.get("layout", layout) != layout:
    raise ValueError(
        f"{root!r} holds a synthetic {settings['layout']}-layout dataset, but "
        f"data.synthetic_layout={layout!r}: set --config.data.synthetic_layout="
        f"{settings['layout']}, or choose another --config.data.root.")
  ours = {"num_ids": str(num_ids), "seed": str(seed)}
  differ = {k: settings[k] for k, v in ours.items() if settings.get(k, v) != v}
  if differ:
    logging.warning("%s was generated with %s; using it as it is (config: %s). Delete it or "
                    "choose another data.root to generate the config's dataset.", root,
                    " ".join(f"{k}={v}" for k, v in differ.items()),
                    " ".join(f"{k}={ours[k]}" for k in differ))


def _tfds_source():
  """The TFDS reader; imported on use, so that data.source=files needs no TensorFlow."""
  from vireid_jax.data import tfds_source  # pylint: disable=g-import-not-at-top
  return tfds_source


def _check_source(data_cfg: ml_collections.ConfigDict) -> bool:
  """True for data.source=tfds."""
  if data_cfg.source not in SOURCES:
    raise ValueError(f"data.source={data_cfg.source!r}: use one of {SOURCES}.")
  return data_cfg.source == "tfds"


def load_train_set(data_cfg: ml_collections.ConfigDict, workdir: str) -> TrainSet:
  """The training records (and, for data.source=tfds, their images)."""
  if _check_source(data_cfg):
    return _tfds_source().load_train_set(data_cfg)
  layout, root = layout_and_root(data_cfg, workdir)
  dataset = registry.get(layout)
  return dataset.load_train(root, dataset.split_of(data_cfg.trial))


def hold_out_validation(config: ml_collections.ConfigDict, workdir: str,
                        train_set: TrainSet) -> tuple[TrainSet, validation.ValidationSet]:
  """(training set without the validation identities, their images), for `evals` with `val`.

  The dataset's own validation ids where it names them (SYSU-MM01's
  exp/val_id.txt), else a draw of `val.fraction` of the training identities
  with `val.seed`.
  """
  dataset = dataset_of(config.data)
  if dataset.validation_ids is not None:
    _, root = layout_and_root(config.data, workdir)
    ids = dataset.validation_ids(root)
    what = f"the {dataset.title} validation identities"
  else:
    ids = validation.drawn_ids(train_set.class_pids, config.val.fraction, config.val.seed)
    what = f"val.fraction={config.val.fraction} of the {dataset.title} training identities"
  try:
    return validation.split(train_set, ids, what)
  except ValueError as e:
    raise DataError(str(e)) from None


def load_test_set(data_cfg: ml_collections.ConfigDict, workdir: str):
  """Returns (layout, test set): the dataset's name and its test set (its own type)."""
  if _check_source(data_cfg):
    return _tfds_source().load_test_set(data_cfg)
  layout, root = layout_and_root(data_cfg, workdir)
  dataset = registry.get(layout)
  return layout, dataset.load_test(root, dataset.split_of(data_cfg.trial))


def test_image_source(data_cfg: ml_collections.ConfigDict) -> EncodedImages | None:
  """Where the evaluation reads test pixels: None = the files; else the prepared images.

  Pass it to `evaluation.features.make_extractor(..., image_source=...)`.
  """
  if data_cfg.name == registry.FAKE or not _check_source(data_cfg):
    return None
  return _tfds_source().test_images(data_cfg)


def test_paths(layout: str, test_set) -> tuple[tuple[str, list[str]], ...]:
  """((what, paths), ...) of a test set, for checks and messages."""
  return registry.get(layout).test_paths(test_set)


def check_test_set(data_cfg: ml_collections.ConfigDict, workdir: str) -> None:
  """Cheap start-up check that the evaluation will find its images; call before step 0.

  Loads the query and gallery lists and checks that neither is empty and that
  every file exists and is not empty (no decoding: a few ms per thousand
  files). Raises FileNotFoundError or BadImageError naming the
  file and what to do, so a broken test set stops the run before training
  rather than at the first evaluation.
  """
  if data_cfg.name == registry.FAKE:
    return
  check_test_images(data_cfg, *load_test_set(data_cfg, workdir))


def check_test_images(data_cfg: ml_collections.ConfigDict, layout: str, test_set) -> None:
  """`check_test_set` on a test set already loaded (`load_test_set`'s layout and set)."""
  store = test_image_source(data_cfg)
  how = ("re-copy it from the dataset archive (`python -m vireid_jax.data.check` lists every "
         "broken file)")
  dataset = registry.get(layout)
  for name, paths in dataset.test_paths(test_set):
    if not paths:
      raise DataError(f"The {dataset.title} test set has no {name} images: check its test "
                      f"lists ({dataset.test_lists}).")
    if store is not None:
      store.encoded(paths)   # raises FileNotFoundError naming a missing record
      continue
    for path in paths:
      try:
        size = os.stat(path).st_size
      except FileNotFoundError:
        raise FileNotFoundError(f"Test image {path!r} ({name}) does not exist: {how}.") from None
      if size == 0:
        raise BadImageError(f"Test image {path!r} ({name}) is empty (0 bytes): {how}.")




# ---------------------------------------------------------------- config checks

def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """One line per data setting no dataset can use; then the named dataset's own checks."""
  data = config.data
  if data.name not in names():
    return [f"data.name={data.name!r}: use one of {', '.join(repr(n) for n in names())}."]
  if data.name == registry.FAKE:
    return []
  if data.name == registry.SYNTHETIC and data.synthetic_layout not in registry.synthetic_layouts():
    return [f"data.synthetic_layout={data.synthetic_layout!r}: use one of "
            f"{', '.join(repr(n) for n in registry.synthetic_layouts())}."]
  dataset = dataset_of(data)
  problems = []
  if dataset.splits and int(data.trial) not in dataset.splits:
    problems.append(f"data.trial={data.trial!r}: {dataset.title} trials are "
                    f"{dataset.splits[0]}..{dataset.splits[-1]}.")
  if config.eval.gallery_rule not in dataset.suite.gallery_rules:
    problems.append(f"eval.gallery_rule={config.eval.gallery_rule!r}: {dataset.title} galleries "
                    f"are drawn by {' or '.join(repr(r) for r in dataset.suite.gallery_rules)}.")
  if ("val" in config_defaults.evaluation_names(config) and data.source == "tfds"
      and dataset.validation_ids is not None):
    problems.append(f"evals={config.evals!r} with data.source=tfds: {dataset.title}'s "
                    "validation identities are read from its files; use data.source=files.")
  return problems + list(dataset.config_problems(config))


def validate(config: ml_collections.ConfigDict, **counts) -> None:
  """`config_defaults.validate` plus the dataset's checks: every problem, one line each.

  `counts` as `config_defaults.validate` takes them (num_classes, num_devices, num_hosts).
  """
  config_defaults.validate(config, extra_problems=config_problems(config), **counts)
