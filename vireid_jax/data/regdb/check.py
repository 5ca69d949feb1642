"""What `python -m vireid_jax.data.check --dataset=regdb` looks at beyond the images."""

from __future__ import annotations

import os
from typing import Sequence

from vireid_jax.data import lists
from vireid_jax.data import scan as scan_lib
from vireid_jax.data.regdb import reader


def scan(root: str, splits: Sequence[int], decode: bool, report: scan_lib.Report) -> None:
  """Each split's lists and counts, ids in train and test, and (decode) every image."""
  seen: set[str] = set()
  for trial in splits or reader.TRIALS:
    sets = scan_lib.read(report, lambda: reader.load_train(root, trial),
                         lambda: reader.load_test(root, trial), where=f"trial {trial}: ")
    if sets is None:
      continue
    train, test = sets
    report.info(f"trial {trial}: train {train.num_classes} classes, {len(train.visible)} visible + "
                f"{len(train.infrared)} thermal; test {len(test.visible)} visible + "
                f"{len(test.thermal)} thermal")
    test_vis_ids = {r.label for r in test.visible}
    test_th_ids = {r.label for r in test.thermal}
    if test_vis_ids != test_th_ids:
      report.problem(f"trial {trial}: test labels {sorted(test_vis_ids ^ test_th_ids)[:10]} "
                     "appear in one modality only")
    test_pids = {lists.folder_id(os.path.relpath(r.path, root).replace(os.sep, "/"))
                 for r in test.visible + test.thermal} - {None}
    both = sorted(set(train.class_pids) & test_pids)
    if both:
      report.problem(f"trial {trial}: ids {both[:10]} are in both train and test")
    if decode:
      scan_lib.check_files(train.visible + train.infrared + test.visible + test.thermal, report,
                           seen)
  root_abs = os.path.abspath(root)
  if decode and seen:
    report.info(f"decoded {len(seen)} distinct images")
    on_disk = set()
    for sub in ("Visible", "Thermal"):
      for dirpath, _, names in os.walk(os.path.join(root_abs, sub)):
        on_disk.update(os.path.normpath(os.path.join(dirpath, n)) for n in names
                       if n.lower().endswith(lists.IMAGE_EXTENSIONS))
    unused = len(on_disk - {os.path.normpath(p) for p in seen})
    if unused:
      report.info(f"{unused} images under Visible/ and Thermal/ are in no checked idx file")
