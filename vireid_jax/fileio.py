"""Every file written under a workdir goes through here: local folders and object stores alike.

A workdir is a local folder or a URL of an object store (`gs://BUCKET/run`,
`s3://...`). Paths are `etils.epath.Path` (orbax's own path type) from the
command line to the last write, never strings through `os.path`, which would
turn `gs://bucket/run` into a local folder named `gs:`. Local files keep the
local guarantees (atomic replacement, appended rows flushed one by one); object
stores, where every object is written whole, need neither renames nor appends.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterable

from absl import logging
from etils import epath

from vireid_jax.errors import UserError

PathLike = str | os.PathLike
URL_SCHEMES = ("gs://", "s3://", "az://", "hf://")   # what epath reads and writes


def is_remote(path: PathLike) -> bool:
  """True for a URL (`gs://...`), False for a local path."""
  return "://" in os.fspath(path)


def as_path(path: PathLike) -> epath.Path:
  """`path` as an epath.Path: a URL as it is, a local path absolute with `~` expanded."""
  text = os.fspath(path)
  if is_remote(text):
    if not text.startswith(URL_SCHEMES):
      raise UserError(f"{text!r}: unsupported storage scheme; use a local folder or one of "
                      f"{', '.join(s + '...' for s in URL_SCHEMES)}.")
    return epath.Path(text)
  return epath.Path(os.path.abspath(os.path.expanduser(text)))


OVERWRITE_HELP = "Replace an existing --out file (without it, an existing file is refused)."


def refuse_to_replace(paths: Iterable[PathLike], overwrite: bool) -> None:
  """Before any work: a file the user named (--out) is theirs, replaced only with --overwrite.

  A folder is never replaced. Callers skip their own default outputs inside a
  workdir (WORKDIR/plots), which are the run's.
  """
  for path in map(as_path, paths):
    if path.is_dir():
      raise UserError(f"--out={path} is a folder: give a file path.")
    if path.exists() and not overwrite:
      raise UserError(f"{path} already exists: give another --out, or add --overwrite to "
                      "replace it.")


def write_text_atomic(path: PathLike, text: str) -> None:
  """Writes `text` to `path` so that a reader never sees a half-written file (`write_bytes_atomic`)."""
  write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
  """Writes `data` to `path` so that a reader never sees a half-written file.

  Local files go through a temporary file renamed into place (a killed write
  leaves the old file) and get the usual permissions (0666 less the umask),
  not `mkstemp`'s private 0600: results and configs are meant to be shared.
  An object store replaces an object only when its upload is complete.
  """
  path = as_path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(path):
    path.write_bytes(data)
    return
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=os.fspath(path.parent))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, os.fspath(path))
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read_text(path: PathLike) -> str | None:
  """The text of `path`, or None when it does not exist."""
  path = as_path(path)
  if not path.is_file():
    return None
  return path.read_text(encoding="utf-8")


class LineLog:
  """A text file that grows by whole lines (JSON-lines logs), each on storage once added.

  Local: opened in append mode, each `append` flushed. Object stores cannot
  append: the object is rewritten whole with each `append` (logs are small).
  Existing content is kept; a last line left unfinished by a killed run is
  dropped first (`drop_partial_last_line`), so appended lines stay valid.
  """

  def __init__(self, path: PathLike):
    self.path = as_path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._remote = is_remote(self.path)
    if self._remote:
      text = read_text(self.path) or ""
      self._text = text[:text.rfind("\n") + 1]
      self._file = None
    else:
      drop_partial_last_line(os.fspath(self.path))
      self._file = open(os.fspath(self.path), "a", encoding="utf-8")

  def append(self, line: str) -> None:
    line = line if line.endswith("\n") else line + "\n"
    if self._remote:
      self._text += line
      self.path.write_text(self._text, encoding="utf-8")
    else:
      self._file.write(line)
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


def append_line(path: PathLike, line: str) -> None:
  """Adds one line to `path` (created if missing); see `LineLog`."""
  log = LineLog(path)
  try:
    log.append(line)
  finally:
    log.close()


def drop_partial_last_line(path: str) -> None:
  """Cuts a last line left unfinished by a killed run from a local file.

  After a resume, steps past the restored checkpoint appear twice in a log;
  the later row wins.
  """
  if not os.path.exists(path):
    return
  with open(path, "rb+") as f:
    end = f.seek(0, os.SEEK_END)
    if end == 0:
      return
    f.seek(end - 1)
    if f.read(1) == b"\n":
      return
    cut, pos = 0, end
    while pos > 0:   # the last newline, reading backwards in blocks
      start = max(0, pos - 65536)
      f.seek(start)
      i = f.read(pos - start).rfind(b"\n")
      if i >= 0:
        cut = start + i + 1
        break
      pos = start
    logging.warning("%s: dropping a half-written last row (%d bytes) left by a killed run.",
                    path, end - cut)
    f.truncate(cut)
