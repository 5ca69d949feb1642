r"""Prepares a dataset once into TFDS records, images resized to the training size.

    python -m vireid_jax.data.prepare_tfds --dataset=NAME --manual_dir=/data/NAME \
        --data_dir=~/tensorflow_datasets [--image_size=288,144] [--encoding=jpeg|png] \
        [--trials=all|1,2,...]

NAME is any dataset the registry knows (`--help` lists them); `--trials`
picks the numbered splits of a dataset that has them (default: all).

Then train and evaluate from the records with
`--config.data.source=tfds --config.data.tfds_dir=DATA_DIR` (and the same
`--config.data.image_size`). The input pipeline then decodes small images
instead of the original files, with the same records, labels, cameras and
protocols as reading the files. JPEG records (the default, quality 95) differ
from the files' pixels by JPEG's rounding; PNG records give the very same
pixels, but are 2-3x larger and slower to decode. Offline: reads only
`--manual_dir`. A prepared dataset is never overwritten: preparing it again with the same download does nothing.
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from vireid_jax.data import registry, tfds_source
from vireid_jax.data.tfds_builders import DEFAULT_ENCODING, ENCODINGS
from vireid_jax.data.tensorflow_setup import quiet_tensorflow

# --trials' accepted values: every numbered split any dataset has.
SPLITS = tuple(sorted({t for d in registry.DATASETS.values() for t in d.splits}))


def parse_size(text: str) -> tuple[int, int]:
  """"288,144" -> (288, 144)."""
  try:
    height, width = (int(v) for v in text.replace("x", ",").split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: give HEIGHT,WIDTH, e.g. 288,144.") from None
  if min(height, width) < 32:
    raise argparse.ArgumentTypeError(f"{text!r}: height and width must be >= 32.")
  return height, width


def parse_trials(text: str) -> tuple[int, ...]:
  """"all" -> every split; "1,3" -> (1, 3)."""
  if text == "all":
    return ()
  try:
    trials = tuple(int(t) for t in text.split(","))
  except ValueError:
    trials = ()
  if not trials or not set(trials) <= set(SPLITS):
    raise argparse.ArgumentTypeError(f"{text!r}: give all, or trials in "
                                     f"{SPLITS[0]}..{SPLITS[-1]} such as 1,2.")
  return trials


def _builders(dataset: str, data_dir: str, image_size, encoding: str, trials):
  """The builders of `dataset` at `image_size` (one per numbered split in `trials`)."""
  quiet_tensorflow()
  # TensorFlow Datasets, only when preparing. pylint: disable-next=g-import-not-at-top
  from vireid_jax.data.tfds_builders import builder
  spec = registry.get(dataset)
  return builder.builders(spec, data_dir, image_size, encoding, tuple(trials) or spec.splits)


def prepare(dataset: str, manual_dir: str, data_dir: str,
            image_size: Sequence[int] | None = None, encoding: str = DEFAULT_ENCODING,
            trials: Sequence[int] = ()) -> list[str]:
  """Prepares the records; returns the prepared folders (one per numbered split).

  image_size: (height, width); None = the dataset's (its configs' data.image_size).
  trials: the numbered splits to prepare, for datasets that have them (() = all).

  Never overwrites: refuses (FileExistsError) a folder that already holds
  records prepared from another download, or anything else; reuses one
  prepared from the same download. TFDS writes into a temporary folder and
  renames it into place when complete.
  """
  spec = registry.get(dataset)
  trials = (tuple(trials) or spec.splits) if spec.splits else ()   # one split: nothing to pick
  if not set(trials) <= set(spec.splits):
    raise ValueError(f"trials={trials}: {spec.title} has splits "
                     f"{spec.splits[0]}..{spec.splits[-1]}.")
  if encoding not in ENCODINGS:
    raise ValueError(f"encoding={encoding!r}: use one of {ENCODINGS}.")
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  image_size = tuple(int(s) for s in (image_size or spec.image_size))
  # Reads the download's lists first: a broken one fails here, before anything is written.
  for split in trials or (None,):
    spec.load_train(manual_dir, split)
    spec.load_test(manual_dir, split)
  tfds = tfds_source.import_tfds()
  folders = []
  for builder in _builders(dataset, data_dir, image_size, encoding, trials):
    folder = os.fspath(builder.data_path)
    if os.path.exists(folder) and not os.path.isfile(os.path.join(folder, "dataset_info.json")):
      raise FileExistsError(f"{folder} exists but holds no prepared dataset: delete it "
                            "yourself, or give another --data_dir.")
    if os.path.isfile(os.path.join(folder, "dataset_info.json")):
      prepared_from = dict(tfds.builder_from_directory(folder).info.metadata).get("manual_dir")
      if prepared_from != manual_dir:
        raise FileExistsError(
            f"{folder} already holds records prepared from {prepared_from}, not from "
            f"{manual_dir}: give another --data_dir, or delete that folder yourself.")
      print(f"{folder} is already prepared from {manual_dir}: nothing to do.")
    else:
      print(f"Preparing {folder} from {manual_dir} ...", flush=True)
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    folders.append(folder)
  return folders


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m vireid_jax.data.prepare_tfds",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dataset", choices=registry.names(), required=True)
  parser.add_argument("--manual_dir", required=True,
                      help="the unpacked download (the folder data.root would name)")
  parser.add_argument("--data_dir", required=True,
                      help="where the records go (then --config.data.tfds_dir)")
  parser.add_argument("--image_size", type=parse_size, default=None,
                      help="HEIGHT,WIDTH the images are resized to: the config's data.image_size "
                           "(default: the dataset's, e.g. 288,144)")
  parser.add_argument("--encoding", choices=ENCODINGS, default=DEFAULT_ENCODING,
                      help="jpeg (default): fast to decode; png: the files' exact pixels, "
                           "2-3x larger")
  parser.add_argument("--trials", type=parse_trials, default=(),
                      help="numbered splits to prepare, for datasets that have them: all "
                           "(default) or e.g. 1,2")
  args = parser.parse_args(argv)
  prepare(args.dataset, args.manual_dir, args.data_dir, args.image_size, args.encoding,
          args.trials)
  height, width = args.image_size or registry.get(args.dataset).image_size
  print(f"Train and evaluate from them with --config.data.source=tfds "
        f"--config.data.tfds_dir={os.path.abspath(os.path.expanduser(args.data_dir))} "
        f"--config.data.image_size=\"({height}, {width})\"")


if __name__ == "__main__":
  main()
