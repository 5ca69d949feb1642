"""The parts of a dataset check every dataset shares: the report, image decoding, counts.

A dataset's own `scan` (declared in its module) reads its lists with the
training readers and adds what it finds to a `Report`;
`python -m vireid_jax.data.check` prints it. No TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Iterable, Sequence

from PIL import Image

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


def read(report: Report, *loaders, where: str = ""):
  """The loaders' results; None, with the refusal reported (after `where`), if one refuses."""
  try:
    return tuple(load() for load in loaders)
  except (FileNotFoundError, ValueError) as e:
    report.problem(f"{where}{e}")
    return None


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


def check_files(records: Iterable[ImageRecord], report: Report, seen: set[str]) -> None:
  """Decodes every file not in `seen` (then added), reporting broken files and image modes."""
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


def counts(report: Report, title: str, records: Sequence[ImageRecord]) -> None:
  """Images and identities per (camera, modality) of `records`."""
  per_cam = collections.Counter((r.camera, r.modality) for r in records)
  ids = collections.defaultdict(set)
  for r in records:
    ids[(r.camera, r.modality)].add(r.label)
  report.info(f"{title}: {len(records)} images, {len({r.label for r in records})} labels")
  for (cam, mod), n in sorted(per_cam.items()):
    report.info(f"  camera {cam} ({MODALITY_NAMES[mod]}): {n} images, {len(ids[(cam, mod)])} ids")


def training_modalities(report: Report, train) -> None:
  """Reports the training identities with images of one modality only."""
  vis_classes = {r.label for r in train.visible}
  ir_classes = {r.label for r in train.infrared}
  one_sided = sorted(train.class_pids[c] for c in vis_classes ^ ir_classes)
  if one_sided:
    report.problem(f"training ids with images of one modality only: {one_sided}")
