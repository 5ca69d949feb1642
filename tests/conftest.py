"""Test setup: CPU only, quiet TensorFlow, the repo root importable (for configs/), one
compilation cache for the whole run, and cheap compiles.

The cache: every test process and every program a test starts (`python -m
vireid_jax.main`, tools, benchmarks) compiles tiny versions of the same models. JAX's
persistent compilation cache in one temporary folder per test run, set before JAX is
imported and inherited by pytest-xdist's workers and by subprocesses, lets each
compilation happen once. It holds only what this run compiled and is deleted at its end.

Cheap compiles: XLA:CPU without LLVM's optimisations (JAX's `jax_disable_most_optimizations`,
inherited by the programs the tests start) compiles in about a quarter less time; the
tests check plumbing and compare runs made the same way. Their float32 sums change in
the last bits; the AGW parity tests, whose bound is tight, turn XLA's defaults back on
(test_agw_parity.py). Inputs keep layer4's maps at least 3 wide: on narrower maps
XLA:CPU's convolutions are 30x slower, without optimisations (64x32: 8 s a step of the
tiny model, 64x48: 0.25 s).
"""

import os
import shutil
import sys
import tempfile

if "PYTEST_XDIST_WORKER" not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="vireid_test_xla_")
  os.environ["VIREID_TEST_OWNS_XLA_CACHE"] = "1"
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


def pytest_unconfigure(config):
  """The run's compilation cache goes with the run (only the process that made it)."""
  del config
  if ("PYTEST_XDIST_WORKER" not in os.environ
      and os.environ.pop("VIREID_TEST_OWNS_XLA_CACHE", None)):
    shutil.rmtree(os.environ.pop("JAX_COMPILATION_CACHE_DIR", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_sysu_root(tmp_path_factory):
  """A 12-identity synthetic SYSU-MM01 (8 training ids) for end-to-end runs; one per worker."""
  from vireid_jax.data import datasets  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("tiny_sysu") / "sysu")
  datasets.ensure_synthetic(root, "sysu", num_ids=12, seed=0)
  return root


@pytest.fixture(scope="session")
def e2e(tmp_path_factory):
  """The uninterrupted reference run of `runs.command` and what other runs share (runs.py)."""
  import runs  # pylint: disable=g-import-not-at-top
  return runs.make_e2e(tmp_path_factory)


def prepare_tiny_tfds(base, image_size, encoding="jpeg", trials=(1,), num_ids=(8, 12)):
  """Synthetic SYSU and RegDB (2 images each) folders, prepared into TFDS records.

  `num_ids`: (SYSU, RegDB) identities; the default (8, 12) gives both 6 training classes.
  Returns a namespace: roots {layout: folder}, tfds_dir, and test_paths(layout).
  """
  import types  # pylint: disable=g-import-not-at-top
  from vireid_jax.data import prepare_tfds, synthetic  # pylint: disable=g-import-not-at-top
  roots = {"sysu": os.path.join(base, "sysu"), "regdb": os.path.join(base, "regdb")}
  synthetic.generate("sysu", roots["sysu"], num_ids=num_ids[0], seed=4, images_per_cam=(1, 3))
  synthetic.generate("regdb", roots["regdb"], num_ids=num_ids[1], seed=4, images_per_cam=(2, 2))
  tfds_dir = os.path.join(base, "tfds")
  for layout, root in roots.items():
    prepare_tfds.prepare(layout, root, tfds_dir, image_size, encoding, trials=trials)

  def test_paths(layout):
    from vireid_jax.data import regdb, sysu  # pylint: disable=g-import-not-at-top
    if layout == "sysu":
      return [r.path for r in sysu.load_test(roots["sysu"]).query]
    return [r.path for r in regdb.load_test(roots["regdb"], trials[0]).thermal]

  return types.SimpleNamespace(roots=roots, tfds_dir=tfds_dir, test_paths=test_paths)
