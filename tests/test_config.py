"""Configs: every required key exists, overrides work, unknown keys and bad values are refused."""

import importlib.util
import os
import subprocess
import sys

import pytest

from vireid_jax import config_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = ["sysu.py", "regdb.py", "agw_baseline.py", "ablation.py", "synthetic.py"]
REQUIRED = ["mode", "seed", "data.name", "data.root", "data.trial", "data.image_size",
            "batch.identities", "batch.instances", "num_epochs", "steps_per_epoch",
            "model.depth", "model.pretrained", "model.dtype", "eval.every_epochs", "eval.trials"]


def load(name, arg=None):
  spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(ROOT, "configs", name))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg) if arg is not None else mod.get_config()


def get(c, dotted):
  for part in dotted.split("."):
    c = c[part]
  return c


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_every_config_has_the_required_keys_and_validates(name):
  c = load(name)
  for key in REQUIRED:
    get(c, key)   # KeyError if absent
  # Same key set as the base: nothing added or lost per config.
  assert set(c.to_dict()) == set(config_defaults.base_config().to_dict())
  config_defaults.validate(c, num_classes=395, num_devices=1)


def test_ablation_rows_switch_modules():
  rows = {r: load("ablation.py", r) for r in ("baseline", "intra", "dist", "full")}
  assert not rows["baseline"].model.intra_branches and rows["baseline"].loss.w_dist == 0
  assert rows["intra"].model.intra_branches and rows["intra"].loss.w_dist == 0
  assert not rows["dist"].model.intra_branches and rows["dist"].loss.w_dist > 0
  assert rows["full"].model.intra_branches and rows["full"].loss.w_dist > 0
  assert rows["full"].loss.w_intra > 0 and rows["baseline"].loss.w_intra == 0
  syn = load("ablation.py", "full,synthetic")
  assert syn.data.name == "synthetic" and syn.model.depth == 18
  agw = load("agw_baseline.py")
  assert not agw.model.intra_branches and agw.loss.w_dist == 0 and agw.loss.triplet == "wrt"


@pytest.mark.parametrize("mutate, message", [
    (lambda c: setattr(c.batch, "identities", 500), "larger than the 395 training identities"),
    (lambda c: setattr(c.optim, "decay_epochs", (5, 50)), "before the warm-up ends"),
    (lambda c: (setattr(c.batch, "identities", 7), setattr(c.batch, "instances", 3)),
     "not divisible by the 4 devices"),
    (lambda c: setattr(c.model, "branch", "mlp"), "model.branch"),
    (lambda c: setattr(c.eval, "gallery_rule", "official"), "rand_perm_cam"),
    (lambda c: setattr(c.data, "trial", 11), "trials are 1..10"),
])
def test_validate_refuses_configs_that_cannot_work(mutate, message):
  c = config_defaults.base_config()
  mutate(c)
  with pytest.raises(ValueError, match=message):
    config_defaults.validate(c, num_classes=395, num_devices=4)


def test_unknown_override_key_is_an_error_and_known_override_applies():
  code = (
      "import sys\n"
      "from absl import flags\n"
      "from ml_collections import config_flags\n"
      "c = config_flags.DEFINE_config_file('config', lock_config=True)\n"
      "flags.FLAGS(sys.argv)\n"
      "print(c.value.batch.identities, c.value.model.dtype)\n")
  base = [sys.executable, "-c", code, f"--config={ROOT}/configs/sysu.py"]
  ok = subprocess.run(base + ["--config.batch.identities=6", "--config.model.dtype=float32"],
                      capture_output=True, text=True, cwd=ROOT)
  assert ok.returncode == 0, ok.stderr
  assert ok.stdout.split() == ["6", "float32"]
  bad = subprocess.run(base + ["--config.batch.identitties=6"], capture_output=True, text=True,
                       cwd=ROOT)
  assert bad.returncode != 0
  assert "identitties" in bad.stderr


def test_main_reports_bad_input_without_a_traceback(tmp_path):
  res = subprocess.run(
      [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/sysu.py",
       f"--workdir={tmp_path}/w", f"--config.data.root={tmp_path}/missing"],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert res.returncode == 1
  assert "error: SYSU-MM01 root" in res.stderr and "request it from the authors" in res.stderr
  assert "Traceback" not in res.stderr
