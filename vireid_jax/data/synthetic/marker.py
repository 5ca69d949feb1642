"""The completion marker: proof that a folder is a whole dataset written by this generator.

`generate` writes it last, so a folder with the marker is complete, and only
folders with it are ever reused (or treated as ours) by the rest of the code.
One line of `key=value` pairs, e.g. `layout=sysu num_ids=40 seed=0`.
"""

from __future__ import annotations

import os

MARKER_NAME = ".complete"


def write_marker(root: str, **settings) -> None:
  """Writes the marker into `root` (a folder the generator has just filled)."""
  line = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (tuple, list)) else v}"
                  for k, v in settings.items())
  with open(os.path.join(root, MARKER_NAME), "x") as f:   # "x": never overwrites
    f.write(line + "\n")


def read_marker(root: str) -> dict[str, str] | None:
  """The settings in `root`'s marker, or None if `root` holds no marker (not ours)."""
  path = os.path.join(root, MARKER_NAME)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    tokens = f.read().split()
  return dict(t.split("=", 1) for t in tokens if "=" in t)
