"""Cloud Storage without a network, for tests: `gs://BUCKET/...` paths kept under a local folder.

`install(store)` makes `etils.epath` (through which the program does every
workdir read and write) serve `gs://BUCKET/a/b` from `STORE/BUCKET/a/b`: the
program takes its remote code path, and the test sees every object it wrote.
A `gs://` path that went through `os.path` instead ends up as a local folder
`gs:`, which the tests look for.

Two libraries read URLs with their own clients, not epath: orbax's arrays go
through TensorStore's GCS driver, and TensorBoard's event files through
TensorFlow's file system. `redirect_libraries(store, record)` hands them the
local folder behind the URL they receive, after writing that URL to `record`,
so a test can check that they were given the URL, never a local path.

Usage in a child process: `python -c "import fake_gcs; fake_gcs.main(STORE)" ARGS...`
runs `python -m vireid_jax.main ARGS...` with both in place.
"""

import json
import os
import sys
from unittest import mock

from etils.epath import backend as epath_backend
from etils.epath import gpath

PREFIX = "gs://"


class FakeGcsBackend(type(epath_backend.os_backend)):
  """epath's local backend, on `STORE/<bucket>/<path>` for `gs://<bucket>/<path>`."""

  def __init__(self, store):
    super().__init__()
    self.store = os.path.abspath(store)

  def local(self, path) -> str:
    path = os.fspath(path)
    assert path.startswith(PREFIX), path
    return os.path.join(self.store, path[len(PREFIX):])

  def url(self, local) -> str:
    return PREFIX + os.path.relpath(os.fspath(local), self.store)

  def open(self, path, mode):
    return super().open(self.local(path), mode)

  def exists(self, path):
    return super().exists(self.local(path))

  def isdir(self, path):
    return super().isdir(self.local(path))

  def listdir(self, path):
    return super().listdir(self.local(path))

  def glob(self, path):
    return [self.url(p) for p in super().glob(self.local(path))]

  def walk(self, top, *, top_down=True, on_error=None):
    for root, dirs, files in super().walk(self.local(top), top_down=top_down, on_error=on_error):
      yield self.url(root), dirs, files

  def makedirs(self, path, *, exist_ok=False, mode=None):
    return super().makedirs(self.local(path), exist_ok=exist_ok, mode=mode)

  def mkdir(self, path, *, exist_ok=False, mode=None):
    return super().mkdir(self.local(path), exist_ok=exist_ok, mode=mode)

  def rmtree(self, path):
    return super().rmtree(self.local(path))

  def remove(self, path):
    return super().remove(self.local(path))

  def rename(self, path, dst):
    return super().rename(self.local(path), self.local(dst))

  def replace(self, path, dst):
    return super().replace(self.local(path), self.local(dst))

  def copy(self, path, dst, overwrite):
    return super().copy(self.local(path), self.local(dst), overwrite=overwrite)

  def stat(self, path):
    return super().stat(self.local(path))


def install(store):
  """Serves epath's `gs://` paths from `store`; returns the patch (stop() undoes it)."""
  os.environ["EPATH_USE_TF"] = "false"    # epath's own switch: no TensorFlow file system
  gpath._is_tf_installed.cache_clear()    # pylint: disable=protected-access
  backends = dict(gpath._PREFIX_TO_BACKEND, gs=FakeGcsBackend(store))  # pylint: disable=protected-access
  patch = mock.patch.object(gpath, "_PREFIX_TO_BACKEND", backends)
  patch.start()
  return patch


def redirect_libraries(store, record):
  """orbax and TensorBoard get the local folder behind the URL they are given (noted in `record`)."""
  from clu import metric_writers  # pylint: disable=import-outside-toplevel
  from vireid_jax.training import checkpointing  # pylint: disable=import-outside-toplevel
  fake = FakeGcsBackend(store)

  def note(library, url):
    with open(record, "a") as f:
      f.write(json.dumps({"library": library, "path": str(url)}) + "\n")
    return fake.local(url) if str(url).startswith(PREFIX) else url

  manager_init = checkpointing._Manager.__init__  # pylint: disable=protected-access
  writer_init = metric_writers.SummaryWriter.__init__
  checkpointing._Manager.__init__ = (  # pylint: disable=protected-access
      lambda self, directory, *a, **k: manager_init(self, note("orbax", directory), *a, **k))
  metric_writers.SummaryWriter.__init__ = (
      lambda self, logdir, *a, **k: writer_init(self, note("tensorboard", logdir), *a, **k))


def main(store, record=None):
  """`python -m vireid_jax.main` (or the tool given as sys.argv[1] = -m MODULE) on the fake store."""
  install(store)
  redirect_libraries(store, record or os.path.join(store, "handed_over.jsonl"))
  if sys.argv[1:2] == ["-m"]:
    import runpy  # pylint: disable=import-outside-toplevel
    module, sys.argv = sys.argv[2], [sys.argv[2]] + sys.argv[3:]
    runpy.run_module(module, run_name="__main__")
    return
  from vireid_jax import main as entry  # pylint: disable=import-outside-toplevel
  sys.argv = ["vireid_jax.main"] + sys.argv[1:]
  entry.run()
