"""Test setup: CPU only, quiet TensorFlow, the repo root importable (for configs/)."""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


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
