"""Small file helpers shared by everything that writes into a workdir."""

from __future__ import annotations

import os
import tempfile


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file renamed into place.

  A reader never sees a half-written file, and a killed write leaves the old
  one. The file gets the usual permissions (0666 less the umask), not
  `mkstemp`'s private 0600: results and configs are meant to be shared.
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
