r"""Scans a dataset before training, so a bad file fails here and not at step 40k.

    python -m vireid_jax.data.check --dataset=sysu --root=/data/SYSU-MM01
    python -m vireid_jax.data.check --dataset=regdb --root=/data/RegDB [--trial=1]

Prints image counts per camera and modality and per image mode, ids without
images, and every file that is empty, truncated, not an image, or grey in a
visible camera. Modes the readers convert (RGBA, palette, 16-bit, ...) are
counted and listed, not refused. Exits with status 1 if it found problems.
Uses the same readers as training (no TensorFlow).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
from typing import Iterable, Sequence

from PIL import Image

from vireid_jax.data import regdb, sysu
from vireid_jax.data.records import INFRARED, MODALITY_NAMES, VISIBLE, ImageRecord

# Modes read without conversion; others are converted to RGB by both readers
# (16-bit grey stretched by its maximum, transparency laid over black), and counted.
NATIVE_MODES = {VISIBLE: ("RGB",), INFRARED: ("L", "RGB")}
# A visible image without colour is most likely an infrared one in the wrong folder.
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


@dataclasses.dataclass
class Report:
  """What the scan found: informative lines, and problems that should stop training."""
  lines: list[str] = dataclasses.field(default_factory=list)
  problems: list[str] = dataclasses.field(default_factory=list)

  def info(self, msg: str) -> None:
    self.lines.append(msg)

  def problem(self, msg: str) -> None:
    self.problems.append(msg)

  @property
  def ok(self) -> bool:
    return not self.problems

  def text(self) -> str:
    out = list(self.lines)
    if self.problems:
      out.append(f"{len(self.problems)} problem(s):")
      out.extend("  " + p for p in self.problems)
    else:
      out.append("No problems found.")
    return "\n".join(out)


def inspect_image(path: str, modality: int) -> tuple[str | None, str | None]:
  """(PIL mode or None, what is wrong with the file or None) for one image."""
  try:
    if os.path.getsize(path) == 0:
      return None, "zero-byte file"
  except OSError as e:
    return None, f"cannot stat ({e})"
  try:
    with Image.open(path) as img:
      mode = img.mode
      img.load()
  except Exception as e:  # pylint: disable=broad-except
    return None, f"cannot decode ({type(e).__name__}: {e})"
  if modality == VISIBLE and mode in GREY_MODES:
    return mode, (f"unexpected mode {mode!r} for a visible image (expected colour, e.g. RGB): "
                  "is it an infrared image in a visible camera's folder?")
  return mode, None


def _check_files(records: Iterable[ImageRecord], report: Report, seen: set[str]) -> None:
  modes = {VISIBLE: collections.Counter(), INFRARED: collections.Counter()}
  converted: dict[int, list[str]] = {VISIBLE: [], INFRARED: []}
  for r in records:
    if r.path in seen:
      continue
    seen.add(r.path)
    mode, why = inspect_image(r.path, r.modality)
    if why:
      report.problem(f"{r.path}: {why}")
    if mode is not None:
      modes[r.modality][mode] += 1
      if not why and mode not in NATIVE_MODES[r.modality]:
        converted[r.modality].append(f"{r.path} ({mode})")
  for modality, counts in modes.items():
    if counts:
      report.info(f"{MODALITY_NAMES[modality]} image modes: " +
                  ", ".join(f"{m} {n}" for m, n in sorted(counts.items())))
    if converted[modality]:
      report.info(f"{len(converted[modality])} {MODALITY_NAMES[modality]} image(s) converted to "
                  f"RGB on reading (16-bit grey stretched, transparency over black), e.g. "
                  f"{'; '.join(converted[modality][:3])}")


def _counts(report: Report, title: str, records: Sequence[ImageRecord]) -> None:
  per_cam = collections.Counter((r.camera, r.modality) for r in records)
  ids = collections.defaultdict(set)
  for r in records:
    ids[(r.camera, r.modality)].add(r.label)
  report.info(f"{title}: {len(records)} images, {len({r.label for r in records})} labels")
  for (cam, mod), n in sorted(per_cam.items()):
    report.info(f"  camera {cam} ({MODALITY_NAMES[mod]}): {n} images, {len(ids[(cam, mod)])} ids")


def check_sysu(root: str, decode: bool = True) -> Report:
  report = Report()
  report.info(f"SYSU-MM01 at {root}")
  try:
    train = sysu.load_train(root)
    test = sysu.load_test(root)
  except (FileNotFoundError, ValueError) as e:
    report.problem(str(e))
    return report
  root = os.path.abspath(root)
  listed = {}
  for split in ("train", "val", "test"):
    listed[split] = sysu.read_id_file(os.path.join(root, "exp", f"{split}_id.txt"))
    report.info(f"exp/{split}_id.txt: {len(listed[split])} ids")
  overlap = (set(listed["train"]) | set(listed["val"])) & set(listed["test"])
  if overlap:
    report.problem(f"ids {sorted(overlap)} are in both the training and the test lists")
  gallery = [ImageRecord(p, pid, cam, VISIBLE)
             for (pid, cam), paths in test.gallery_files.items() for p in paths]
  _counts(report, "train (classes)", train.visible + train.infrared)
  _counts(report, "test query", test.query)
  _counts(report, "test gallery", gallery)
  train_missing = sorted((set(listed["train"]) | set(listed["val"])) - set(train.class_pids))
  if train_missing:
    report.problem(f"training ids without any image: {train_missing}")
  vis_classes = {r.label for r in train.visible}
  ir_classes = {r.label for r in train.infrared}
  one_sided = sorted(train.class_pids[c] for c in vis_classes ^ ir_classes)
  if one_sided:
    report.problem(f"training ids with images of one modality only: {one_sided}")
  query_ids = {r.label for r in test.query}
  gallery_ids = {pid for pid, _ in test.gallery_files}
  no_query = sorted(set(test.test_ids) - query_ids)
  no_gallery = sorted(set(test.test_ids) - gallery_ids)
  no_indoor = sorted(set(test.test_ids) - {pid for pid, cam in test.gallery_files
                                           if cam in sysu.INDOOR_CAMERAS})
  if no_query:
    report.info(f"test ids without IR (query) images: {no_query}")
  if no_gallery:
    report.problem(f"test ids without any RGB (gallery) image: {no_gallery}")
  if no_indoor:
    report.info(f"test ids without indoor (cam1/cam2) RGB images: {no_indoor} "
                "(left out of indoor-search)")
  if decode:
    _check_files(train.visible + train.infrared + test.query + tuple(gallery), report, set())
  return report


def check_regdb(root: str, trials: Sequence[int] = regdb.TRIALS, decode: bool = True) -> Report:
  report = Report()
  report.info(f"RegDB at {root}")
  seen: set[str] = set()
  for trial in trials:
    try:
      train = regdb.load_train(root, trial)
      test = regdb.load_test(root, trial)
    except (FileNotFoundError, ValueError) as e:
      report.problem(f"trial {trial}: {e}")
      continue
    report.info(f"trial {trial}: train {train.num_classes} classes, {len(train.visible)} visible + "
                f"{len(train.infrared)} thermal; test {len(test.visible)} visible + "
                f"{len(test.thermal)} thermal")
    test_vis_ids = {r.label for r in test.visible}
    test_th_ids = {r.label for r in test.thermal}
    if test_vis_ids != test_th_ids:
      report.problem(f"trial {trial}: test labels {sorted(test_vis_ids ^ test_th_ids)[:10]} "
                     "appear in one modality only")
    test_pids = {regdb.folder_id(os.path.relpath(r.path, root).replace(os.sep, "/"))
                 for r in test.visible + test.thermal} - {None}
    both = sorted(set(train.class_pids) & test_pids)
    if both:
      report.problem(f"trial {trial}: ids {both[:10]} are in both train and test")
    if decode:
      _check_files(train.visible + train.infrared + test.visible + test.thermal, report, seen)
  root_abs = os.path.abspath(root)
  if decode and seen:
    report.info(f"decoded {len(seen)} distinct images")
    on_disk = set()
    for sub in ("Visible", "Thermal"):
      for dirpath, _, names in os.walk(os.path.join(root_abs, sub)):
        on_disk.update(os.path.normpath(os.path.join(dirpath, n)) for n in names
                       if n.lower().endswith(sysu.IMAGE_EXTENSIONS))
    unused = len(on_disk - {os.path.normpath(p) for p in seen})
    if unused:
      report.info(f"{unused} images under Visible/ and Thermal/ are in no checked idx file")
  return report


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", choices=("sysu", "regdb"), required=True)
  parser.add_argument("--root", required=True)
  parser.add_argument("--trial", type=int, default=0, help="RegDB trial 1..10 (default: all)")
  parser.add_argument("--no_decode", action="store_true", help="skip decoding every image")
  args = parser.parse_args(argv)
  if args.dataset == "sysu":
    report = check_sysu(args.root, decode=not args.no_decode)
  else:
    trials = (args.trial,) if args.trial else regdb.TRIALS
    report = check_regdb(args.root, trials, decode=not args.no_decode)
  print(report.text())
  return 0 if report.ok else 1


if __name__ == "__main__":
  sys.exit(main())
