"""LLCM end to end: `python -m vireid_jax.main --config=configs/synthetic.py --config.data.name=llcm
--config.data.root=DIR` trains on a folder in LLCM's layout and writes the three rows, which
equal the protocol's definition (tests/llcm_reference.py) computed from the features that
`python -m vireid_jax.tools.extract` gives for the same checkpoint."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vireid_jax.data import synthetic
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.tools import extract

from llcm_reference import ROWS, reference_rows  # pylint: disable=wrong-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIALS = 3
# The model, batch, optimiser and evaluation of test_tools.py's run (8 training classes at
# 64x48 there too): the two share their compiled programs.
TINY = {
    "data.name": "llcm", "data.image_size": (64, 48), "data.cache_decoded": False,
    "model.depth": 10, "model.branch_head_dim": 32, "batch.identities": 4, "batch.instances": 2, "num_epochs": 1,
    "steps_per_epoch": 2, "log_every_steps": 1, "optim.warmup_epochs": 1,
    "optim.decay_epochs": (1,), "eval.every_epochs": 0, "eval.trials": TRIALS,
    "eval.batch_size": 16, "eval.rank_list_images": 2,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  base = tmp_path_factory.mktemp("llcm_e2e")
  root = str(base / "LLCM")
  synthetic.generate("llcm", root, num_ids=12, seed=0, images_per_cam=(1, 3),
                     image_size=(64, 32))
  workdir = str(base / "run")
  cmd = ([sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
          f"--workdir={workdir}", f"--config.data.root={root}"]
         + [f"--config.{k}={v}" for k, v in TINY.items()])
  env = dict(os.environ, JAX_PLATFORMS="cpu")   # and the test run's compilation cache
  res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  return root, workdir, res.stdout + res.stderr


def test_main_reports_the_three_rows_of_the_extracted_features(trained, tmp_path):
  root, workdir, log = trained
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert results["dataset"] == "llcm" and results["settings"]["trials"] == TRIALS
  assert [k for k in results if k not in ("dataset", "settings")] == list(ROWS)
  for row in ROWS:
    assert results[row]["trials"] == TRIALS and row in log
  # The features of the test folders, as the feature export gives them for the checkpoint.
  features = {}
  for modality, folder, name in ((VISIBLE, "test_vis", "visible"),
                                 (INFRARED, "test_nir", "infrared")):
    out = str(tmp_path / f"{folder}.npz")
    extract.main(["--workdir", workdir, "--images", os.path.join(root, folder),
                  f"--modality={name}", "--out", out])
    saved = np.load(out)
    assert str(saved["modality"]) == name
    for rel, feat in zip(saved["paths"], saved["features"]):
      features[(modality, os.path.join(root, folder, *str(rel).split("/")))] = feat

  def lookup(paths, modality):
    return np.stack([features[(modality, p)] for p in paths])

  reference = reference_rows(root, lookup, TRIALS)
  for row in ROWS:
    per_trial = {"rank1": [100 * cmc[0] for cmc, _, _ in reference[row]],
                 "rank10": [100 * cmc[9] for cmc, _, _ in reference[row]],
                 "rank20": [100 * cmc[19] for cmc, _, _ in reference[row]],
                 "mAP": [100 * m for _, m, _ in reference[row]],
                 "mINP": [100 * m for _, _, m in reference[row]]}
    for metric, values in per_trial.items():
      assert results[row][metric] == pytest.approx(np.mean(values), abs=1e-6), (row, metric)
      assert results[row]["std"][metric] == pytest.approx(np.std(values), abs=1e-6)
