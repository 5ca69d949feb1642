"""Configs: every required key exists, overrides work, unknown keys and bad values are refused."""

import importlib.util
import os
import subprocess
import sys

import pytest

from vireid_jax import config_defaults
from vireid_jax.data import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(n for n in os.listdir(os.path.join(ROOT, "configs")) if n.endswith(".py"))
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
  if name != "synthetic.py":
    # Real-data configs: training without ImageNet weights must be asked for.
    assert c.model.pretrained == ""
    with pytest.raises(ValueError, match="model.pretrained='': not set") as e:
      config_defaults.validate(c, num_classes=395, num_devices=1)
    assert "python -m vireid_jax.models.pretrained" in str(e.value)
    assert "--config.model.pretrained=none" in str(e.value)
    c.model.pretrained = "/weights/resnet50.npz"
  else:
    assert c.model.pretrained == "none"
  config_defaults.validate(c, num_classes=395, num_devices=1)


def test_main_refuses_training_without_imagenet_weights_before_any_work(tmp_path):
  """sysu.py without model.pretrained: the config error (exit 2), nothing read or written."""
  res = subprocess.run(
      [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/sysu.py",
       f"--workdir={tmp_path}/w", f"--config.data.root={tmp_path}/missing"],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert res.returncode == 2, res.stderr[-2000:]
  assert "model.pretrained='': not set" in res.stderr
  assert "python -m vireid_jax.models.pretrained" in res.stderr
  assert "SYSU-MM01 root" not in res.stderr and "Traceback" not in res.stderr
  assert not os.path.exists(tmp_path / "w")


def test_pretrained_none_is_a_deliberate_choice_and_eval_needs_no_weights():
  c = load("sysu.py")
  c.model.pretrained = "none"
  config_defaults.validate(c, num_classes=395)
  c.model.pretrained, c.mode = "", "eval"       # evaluation restores a checkpoint
  config_defaults.validate(c, num_classes=395)
  c.mode, c.data.name = "train", "fake"          # benchmark batches
  config_defaults.validate(c, num_classes=395)


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
  # The baseline row is the AGW baseline, the full row the method's config: the rows differ
  # from the baseline only by the paper's modules.
  assert rows["baseline"].to_dict() == agw.to_dict()
  assert rows["full"].to_dict() == load("sysu.py").to_dict()
  modules = {("model", "intra_branches"), ("loss", "w_intra"), ("loss", "w_dist")}
  for key, sub in rows["full"].to_dict().items():
    for leaf, value in (sub.items() if isinstance(sub, dict) else ()):
      if (key, leaf) not in modules:
        assert value == agw.to_dict()[key][leaf], (key, leaf)


def test_baselines_spell_out_their_reference_recipes():
  agw, caj = load("agw_baseline.py"), load("caj_baseline.py")
  # AGW's train.py: pad 10 / crop / flip only, non-local blocks of width 1, 81 epochs.
  assert (agw.data.pad, agw.data.flip, agw.data.random_erasing, agw.data.channel_augment,
          agw.data.channel_exchange_view) == (10, True, 0.0, 0.0, False)
  assert (agw.model.non_local, agw.model.non_local_width, agw.num_epochs) == (True, "reference", 81)
  assert (agw.optim.lr_new, agw.optim.lr_pretrained, agw.optim.decay_epochs) == (0.1, 0.01, (20, 50))
  # CAJ's train_ext.py --method adp --augc 1 --rande 0.5 --alpha 1 --square 1 --gamma 1.
  assert (caj.data.random_erasing, caj.data.channel_augment, caj.data.channel_exchange_view) == (
      0.5, 0.5, True)
  assert (caj.loss.triplet, caj.loss.adp_alpha, caj.loss.adp_gamma, caj.loss.adp_square) == (
      "adp", 1.0, 1.0, True)
  assert caj.num_epochs == 100 and caj.eval.flip and not agw.eval.flip
  assert load("caj_baseline.py", "regdb").data.name == "regdb"


@pytest.mark.parametrize("mutate, message", [
    (lambda c: setattr(c.batch, "identities", 500), "larger than the 395 training identities"),
    (lambda c: setattr(c.optim, "decay_epochs", (5, 50)), "before the warm-up ends"),
    (lambda c: (setattr(c.batch, "identities", 7), setattr(c.batch, "instances", 3)),
     "not divisible by the 4 devices"),
    (lambda c: setattr(c.model, "branch", "mlp"), "model.branch"),
    (lambda c: setattr(c.eval, "gallery_rule", "official"), "rand_perm_cam"),
    (lambda c: (setattr(c.data, "name", "regdb"), setattr(c.data, "trial", 11)),
     "RegDB trials are 1..10"),
    (lambda c: setattr(c.model, "non_local_width", "quarter"), "non_local_width"),
    (lambda c: setattr(c.data, "random_erasing", 1.5), r"data.random_erasing=1.5"),
    (lambda c: setattr(c.loss, "triplet", "soft"), "'wrt', 'hard', 'adp'"),
])
def test_validate_refuses_configs_that_cannot_work(mutate, message):
  c = config_defaults.base_config()
  c.model.pretrained = "none"
  mutate(c)
  with pytest.raises(ValueError, match=message):
    datasets.validate(c, num_classes=395, num_devices=4)


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
       f"--workdir={tmp_path}/w", f"--config.data.root={tmp_path}/missing",
       "--config.model.pretrained=none"],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert res.returncode == 1
  assert "error: SYSU-MM01 root" in res.stderr and "request it from the authors" in res.stderr
  assert "Traceback" not in res.stderr


def test_compilation_cache_folder_follows_the_flag_unless_jax_own_variable_is_set(tmp_path,
                                                                                 monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  from vireid_jax import main  # pylint: disable=g-import-not-at-top
  before = jax.config.jax_compilation_cache_dir
  try:
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    main.use_compilation_cache(str(tmp_path / "cache"))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
    assert (tmp_path / "cache").is_dir()
    jax.config.update("jax_compilation_cache_dir", before)
    main.use_compilation_cache("none")                     # off
    assert jax.config.jax_compilation_cache_dir == before
    (tmp_path / "file").write_text("")
    main.use_compilation_cache(str(tmp_path / "file" / "cache"))   # unwritable: warned, off
    assert jax.config.jax_compilation_cache_dir == before
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    main.use_compilation_cache(str(tmp_path / "ours"))     # JAX's own variable wins
    assert jax.config.jax_compilation_cache_dir == before and not (tmp_path / "ours").exists()
  finally:
    jax.config.update("jax_compilation_cache_dir", before)
