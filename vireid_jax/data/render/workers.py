"""Runs the generator's independent work items in one process or several.

Every item is a pure function of its arguments (its own seeded random
generator, its own files), so the files are byte-identical whatever the
number of workers; several workers only make a large dataset (SYSU-MM01's
size: about 45,000 images) quick to write.
"""

from __future__ import annotations

import multiprocessing
from typing import Callable, Sequence


def run_items(fn: Callable, items: Sequence, workers: int = 1) -> None:
  """Calls `fn(item)` for every item, in `workers` processes (1: in this one)."""
  workers = int(workers)
  if workers < 1:
    raise ValueError(f"workers={workers}: give 1 or more processes.")
  if workers == 1 or len(items) < 2:
    for item in items:
      fn(item)
    return
  # fork: the workers inherit the imported modules (no re-import per worker); the
  # generator holds no threads or devices when it forks.
  with multiprocessing.get_context("fork").Pool(min(workers, len(items))) as pool:
    for _ in pool.imap_unordered(fn, items, chunksize=1):
      pass
