"""`python -m vireid_jax.main --config.data.source=tfds` trains and evaluates from prepared
TFDS records alone: the synthetic SYSU and RegDB folders are deleted after preparation, so
any read of an original file would fail the run."""

import json
import shutil
import subprocess
import sys

import pytest

import runs
from conftest import ROOT, prepare_tiny_tfds  # pylint: disable=wrong-import-order

pytest.importorskip("tensorflow_datasets")

# The shapes, model and schedule of the tests' reference run (runs.TINY, 8 training classes):
# its compiled programs, in the test run's compilation cache, serve these runs too.
SIZE = (64, 64)
TINY = {**runs.TINY, "num_epochs": 1, "eval.every_epochs": 0, "eval.trials": 1,
        "eval.rank_list_images": 2}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  base = tmp_path_factory.mktemp("tfds_e2e")
  prepared = prepare_tiny_tfds(str(base), SIZE, num_ids=(12, 16))   # 8 training classes each
  for root in prepared.roots.values():
    shutil.rmtree(root)          # only the TFDS records remain
  env = runs.subprocess_env()          # the reference run's, whose programs it shares
  return prepared, env


def test_main_trains_and_evaluates_from_records(records, tmp_path):
  """Both layouts in one test, one after the other, with the programs of the reference run."""
  prepared, env = records
  for layout, protocols in (("sysu", {"all_single", "all_multi", "indoor_single",
                                      "indoor_multi"}),
                            ("regdb", {"visible_to_thermal", "thermal_to_visible"})):
    flags = {**TINY, "data.name": "synthetic", "data.synthetic_layout": layout,
             "data.source": "tfds", "data.tfds_dir": prepared.tfds_dir}
    workdir = tmp_path / layout
    cmd = ([sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
            f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in flags.items()])
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    with open(workdir / "metrics.jsonl") as f:
      steps = [row["step"] for row in map(json.loads, f) if "loss/total" in row]
    assert steps == [1, 2], (layout, res.stderr[-3000:])   # trained from the records alone
    assert res.returncode == 0, res.stderr[-3000:]
    with open(workdir / "results.json") as f:
      results = json.load(f)
    assert protocols <= set(results) and results["dataset"] == f"synthetic_{layout}"
    for protocol in protocols:
      assert 0.0 <= results[protocol]["rank1"] <= 100.0
