"""Fault injection: each test breaks something on purpose and checks that training either
recovers exactly or stops with a message that names the problem.

Faults: SIGKILL at a random step, a checkpoint write cut short, NaN in a loss term, an
update that overflows, a checkpoint of another model config, eval with no checkpoint,
odd image modes and broken files on the training reader, empty identity folders and
listed ids without images, a batch larger than the dataset, a config changed on resume.

The end-to-end runs are tiny (ResNet-10 at 64x64, 3 epochs of 2 steps) and share one
persistent XLA compilation cache, so only the first run pays for compiling.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from vireid_jax import config_defaults
from vireid_jax.data import check, images, pipeline, scan, synthetic, sysu
from vireid_jax.data.records import VISIBLE
from vireid_jax.losses import objective
from vireid_jax.training import checkpointing, nonfinite, reporting, run_info, setup, trainer
from vireid_jax.training import train_step as train_step_lib

from runs import (ROOT, TINY, TOTAL_STEPS, command, digest, metrics_by_step, run_watching,
                  saved_state, tiny_config)


# ---------------------------------------------------------------------------- kill and resume

def test_sigkill_at_a_random_step_then_the_same_command_ends_like_an_uninterrupted_run(e2e):
  # At step 5: the checkpoint of step 2 is complete (orbax finishes one save before it
  # starts the next, at step 4), the one of step 4 may still be in flight.
  kill_after = TOTAL_STEPS - 1
  workdir = str(e2e.base / "killed")
  cmd = command(workdir, e2e.data)

  def kill_late(line, proc):
    m = re.search(rf"step (\d+)/{TOTAL_STEPS} ", line)
    if m and int(m.group(1)) >= kill_after:
      os.kill(proc.pid, signal.SIGKILL)
      return True
    return False

  status, out = run_watching(cmd, e2e.env, kill_late)
  assert status == -signal.SIGKILL, out[-3000:]
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  complete = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))
                    if d.isdigit())
  assert complete and max(complete) < TOTAL_STEPS, complete

  res = subprocess.run(cmd, cwd=ROOT, env=e2e.env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert f"resuming at step {max(complete)} of {TOTAL_STEPS}" in res.stderr

  # Same losses, learning rates and gradient norms at every step (the data stream and
  # the schedule resumed where they were), same final state, same evaluation.
  want, got = metrics_by_step(e2e.reference), metrics_by_step(workdir)
  assert sorted(got) == sorted(want) == list(range(1, TOTAL_STEPS + 1))
  for step, row in want.items():
    assert got[step].keys() == row.keys()
    for key, value in row.items():
      assert got[step][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
  assert want[5]["train/lr_new"] == pytest.approx(0.1 * want[4]["train/lr_new"])
  (step_a, a), (step_b, b) = saved_state(e2e.reference), saved_state(workdir)
  assert step_a == step_b == TOTAL_STEPS
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
  with open(os.path.join(e2e.reference, "results.json")) as f:
    ref_results = json.load(f)
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  for proto in ("all_single", "all_multi", "indoor_single", "indoor_multi"):
    for key in ("rank1", "rank10", "mAP", "mINP"):
      assert results[proto][key] == pytest.approx(ref_results[proto][key], abs=1e-4), (proto, key)
  with open(os.path.join(workdir, "run_info.jsonl")) as f:
    assert len(f.readlines()) == 2     # one record per start


def test_same_seed_gives_identical_runs_and_the_workdir_records_how(e2e):
  workdir = str(e2e.base / "again")
  res = subprocess.run(command(workdir, e2e.data), cwd=ROOT, env=e2e.env, capture_output=True,
                       text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert metrics_by_step(workdir) == metrics_by_step(e2e.reference)    # bit for bit
  with open(os.path.join(workdir, "results.json")) as f:
    with open(os.path.join(e2e.reference, "results.json")) as g:
      assert json.load(f) == json.load(g)
  for x, y in zip(jax.tree.leaves(saved_state(workdir)[1]),
                  jax.tree.leaves(saved_state(e2e.reference)[1])):
    np.testing.assert_array_equal(x, y)

  with open(os.path.join(workdir, "run_info.jsonl")) as f:
    (info,) = [json.loads(line) for line in f]
  assert info["seed"] == 0 and info["config_changed"] == []
  assert info["packages"]["jax"] == jax.__version__ and "orbax-checkpoint" in info["packages"]
  assert isinstance(info["git"], str) and info["git"]
  assert info["total_steps"] == TOTAL_STEPS
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["seed"] == 0 and saved["data"]["root"] == e2e.data
  assert saved["batch"]["identities"] == TINY["batch.identities"]


def test_a_changed_config_on_restart_is_recorded(tmp_path):
  c = config_defaults.base_config()
  run_info.write(str(tmp_path), c)
  c.optim.lr_new = 0.5
  c.mode = "eval"          # switching mode is not a change of the run
  run_info.write(str(tmp_path), c)
  with open(tmp_path / "run_info.jsonl") as f:
    first, second = [json.loads(line) for line in f]
  assert first["config_changed"] == [] and second["config_changed"] == ["optim.lr_new"]
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["optim"]["lr_new"] == 0.5


# ---------------------------------------------------------------------------- checkpoints

HANG_BEFORE_COMMIT = textwrap.dedent("""
    import os, sys, time
    import jax.numpy as jnp
    from vireid_jax.training import checkpointing
    ckpt = checkpointing.Checkpointer(sys.argv[1], keep=5)
    ckpt.save(1, {"w": jnp.full((64,), 1.0)})
    ckpt.wait()
    rename = os.rename
    def hang_at_commit(src, dst, *args, **kwargs):
      # orbax's last act: rename STEP.orbax-checkpoint-tmp* to STEP. Never let it happen.
      if os.path.basename(os.fspath(dst)).isdigit():
        print("WRITTEN_NOT_COMMITTED", flush=True)
        time.sleep(600)
      return rename(src, dst, *args, **kwargs)
    os.rename = hang_at_commit
    ckpt.save(2, {"w": jnp.full((64,), 2.0)})
    ckpt.wait()
    print("COMMITTED: the hook missed orbax's final rename", flush=True)
""")


def test_a_checkpoint_killed_mid_write_is_never_taken_as_the_latest(tmp_path):
  workdir = str(tmp_path / "run")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen([sys.executable, "-c", HANG_BEFORE_COMMIT, workdir], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  watchdog = threading.Timer(300, proc.kill)
  watchdog.start()
  try:
    line = proc.stdout.readline()
    assert line.startswith("WRITTEN_NOT_COMMITTED"), line + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
  finally:
    watchdog.cancel()
  folder = os.path.join(workdir, "checkpoints")
  assert any(d.startswith("2.orbax-checkpoint-tmp") for d in os.listdir(folder))
  # Another kind of leftover: a write cut short earlier, with a half-written file.
  partial = os.path.join(folder, "3.orbax-checkpoint-tmp-1700000000")
  os.makedirs(partial)
  with open(os.path.join(partial, "_CHECKPOINT_METADATA"), "w") as f:
    f.write('{"item_han')

  ckpt = checkpointing.Checkpointer(workdir, keep=5)
  assert ckpt.latest_step() == 1 and ckpt.latest.all_steps() == [1]
  state, step = ckpt.restore({"w": jnp.zeros((64,))})
  assert step == 1 and float(state["w"][0]) == 1.0
  assert sorted(os.listdir(folder)) == ["1"]     # leftovers cleaned up on open
  ckpt.save(2, {"w": jnp.full((64,), 2.0)})   # and the step can be written again
  ckpt.close()
  reopened = checkpointing.Checkpointer(workdir)
  assert reopened.latest_step() == 2
  reopened.close()


def test_a_checkpoint_of_another_model_config_is_refused_naming_the_keys(e2e):
  other = tiny_config(e2e.data, model__branch_head_dim=48, mode="eval",
                      eval__checkpoint="latest")
  with pytest.raises(checkpointing.CheckpointMismatchError) as e:
    reporting.evaluate_run(other, e2e.reference, ["model.branch_head_dim", "eval.checkpoint"])
  msg = str(e.value)
  assert re.search(r"params/branch_(visible|infrared)/\w+/\w+: checkpoint \((\d+, )*32,?\), "
                   r"this config \((\d+, )*48,?\)", msg), msg
  assert f"step {TOTAL_STEPS}" in msg and "config.json" in msg and "... and " in msg

  # Keys present on one side only are named too (here on toy trees).
  ckpt = checkpointing.Checkpointer(str(e2e.base / "toy"))
  ckpt.save(1, {"a": jnp.zeros(3), "b": {"w": jnp.zeros((2, 2))}})
  with pytest.raises(checkpointing.CheckpointMismatchError,
                     match=r"(?s)b/v: only in this config \(2,\).*b/w: only in the checkpoint"):
    ckpt.restore({"a": jnp.zeros(3), "b": {"v": jnp.zeros(2)}})
  ckpt.close()


def test_eval_without_a_complete_checkpoint_says_so(tiny_sysu_root, tmp_path):
  # A run killed during its first save leaves only a temporary folder.
  os.makedirs(tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-1700000000")
  c = tiny_config(tiny_sysu_root, mode="eval", eval__checkpoint="latest")
  run_info.write(str(tmp_path), c, extra={"num_classes": 8, "steps_per_epoch": 2})
  with pytest.raises(FileNotFoundError, match=r"No checkpoint in .*checkpoints\. Train first"):
    reporting.evaluate_run(c, str(tmp_path), ["eval.checkpoint"])


# ---------------------------------------------------------------------------- NaN and Inf

def install_poison(steps):
  """Makes the "dist" loss term (hence the total and the gradients) NaN at the given steps.

  The marker travels in the batch (visible labels shifted negative), so the jitted
  step is the same at every step and the fault lands exactly where asked. Used in
  a child process (see `run_poisoned`), where it patches the real trainer.
  """
  real_total_loss, real_source = objective.total_loss, setup.dataset_batches

  def total_loss(outputs, labels, loss_cfg, num_visible):
    poisoned = jnp.any(labels < 0)
    loss, terms = real_total_loss(outputs, jnp.where(labels < 0, labels + 1000, labels),
                                  loss_cfg, num_visible)
    bad = terms["dist"] * jnp.where(poisoned, jnp.nan, 1.0)
    loss = loss + float(loss_cfg["w_dist"]) * (bad - terms["dist"])
    return loss, dict(terms, dist=bad, total=loss)

  def dataset_batches(config, train_set):
    source = real_source(config, train_set)

    def poisoned(start_step):
      for step, batch in enumerate(source(start_step), start=start_step + 1):
        if step in steps:
          batch = dict(batch, visible_labels=batch["visible_labels"] - 1000)
        yield batch
    return poisoned

  objective.total_loss = total_loss
  setup.dataset_batches = dataset_batches


POISONED_MAIN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import test_faults
    from vireid_jax import main
    test_faults.install_poison({steps!r})
    sys.argv = ["vireid_jax.main"] + {flags!r}
    main.run()
""")


def run_poisoned(e2e, workdir, steps, *extra_flags):
  """`command` in a child whose trainer is poisoned at `steps`; the run goes to step 8."""
  flags = command(workdir, e2e.data)[3:] + ["--config.num_epochs=4", *extra_flags]
  code = POISONED_MAIN.format(tests=os.path.join(ROOT, "tests"), steps=set(steps), flags=flags)
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e2e.env,
                        capture_output=True, text=True, timeout=900)


def test_nan_stops_the_run_naming_step_and_term_and_keeps_the_last_good_checkpoint(
    e2e, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(e2e.reference, workdir)   # resumes at step 6
  before = digest(os.path.join(workdir, "checkpoints"))
  bad_step = TOTAL_STEPS + 1
  res = run_poisoned(e2e, workdir, {bad_step})
  assert res.returncode == 1, res.stderr[-3000:]
  msg = res.stderr[res.stderr.index("error: "):]
  assert f"at step {bad_step} " in msg and "dist" in msg and "gradients" in msg, msg
  assert f"last good checkpoint (step {TOTAL_STEPS} in {workdir}/checkpoints)" in msg, msg
  assert "skip_nonfinite" in msg and "Traceback" not in res.stderr
  assert digest(os.path.join(workdir, "checkpoints")) == before
  rows = metrics_by_step(workdir)
  assert rows[bad_step]["train/nonfinite"] == 1.0 and max(rows) == bad_step


def test_skip_nonfinite_drops_only_the_bad_step(e2e, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(e2e.reference, workdir)
  bad_step = TOTAL_STEPS + 1
  res = run_poisoned(e2e, workdir, {bad_step}, "--config.optim.skip_nonfinite=True")
  assert res.returncode == 0, res.stderr[-3000:]
  assert f"1 step(s) skipped for NaN/Inf so far (first at step {bad_step}" in res.stderr
  rows = metrics_by_step(workdir)
  assert [rows[s]["train/nonfinite"] for s in (bad_step, bad_step + 1)] == [1.0, 0.0]
  step, state = saved_state(workdir)
  assert step == TOTAL_STEPS + 2 and int(state["nonfinite_count"]) == 1
  assert int(state["first_nonfinite_step"]) + 1 == bad_step
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))
  assert os.path.exists(os.path.join(workdir, "results.json"))


class ToyNet(nn.Module):
  """The smallest model with ViReIDNet's interface: pooled pixels -> BN -> feature -> logits."""

  @nn.compact
  def __call__(self, visible, infrared, train=True):
    x = jnp.concatenate([visible, infrared]).mean(axis=(1, 2))
    feat = nn.Dense(4)(nn.BatchNorm(use_running_average=not train)(x))
    return {"shared": {"feat": feat, "logits": nn.Dense(3)(feat)}}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")   # the 1e39 below
def test_an_update_that_overflows_the_parameters_is_dropped_and_named():
  model, cfg = ToyNet(), config_defaults.base_config()
  rng = np.random.default_rng(0)
  batch = {"visible": jnp.asarray(rng.integers(0, 256, (4, 8, 4, 3)), jnp.uint8),
           "infrared": jnp.asarray(rng.integers(0, 256, (4, 8, 4, 3)), jnp.uint8),
           "visible_labels": jnp.array([0, 0, 1, 1]), "infrared_labels": jnp.array([0, 0, 1, 1])}
  variables = model.init(jax.random.key(0), batch["visible"].astype(jnp.float32),
                         batch["infrared"].astype(jnp.float32))
  tx = optax.sgd(1e39)          # finite gradients, an update beyond float32
  state = train_step_lib.create_train_state(variables, tx)
  step = jax.jit(train_step_lib.make_train_step(model, tx, cfg.loss, jnp.float32))
  new, metrics = step(state, batch)
  assert np.isfinite(float(metrics["loss/total"]))
  assert np.isfinite(float(metrics["train/grad_norm"]))
  assert int(new.nonfinite_count) == 1 and int(new.step) == 1
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params)):
    np.testing.assert_array_equal(a, b)
  assert train_step_lib.describe_nonfinite(int(new.first_nonfinite_terms)) == [
      "parameters after the update"]
  with pytest.raises(nonfinite.NonFiniteLossError, match=r"at step 1 .*parameters after the update"):
    nonfinite.check_nonfinite(new, cfg, ckpt=None)


# ---------------------------------------------------------------------------- bad data

def write_mode_zoo(folder, size=(12, 6)):
  """One small file per image mode a dataset may hold; returns their paths."""
  h, w = size
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
  rgba = np.dstack([rgb, rng.integers(0, 256, (h, w), dtype=np.uint8)])
  rgba[0, 0, 3] = 0
  files = {
      "rgb.png": Image.fromarray(rgb), "grey.png": Image.fromarray(grey, "L"),
      "grey16.png": Image.fromarray((grey.astype(np.uint16) * 200)),        # up to 51,000
      "grey16_low.png": Image.fromarray(grey.astype(np.uint16) // 2),       # below 256
      "rgba.png": Image.fromarray(rgba, "RGBA"), "la.png": Image.fromarray(rgba[..., 2:], "LA"),
      "palette.png": Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16),
      "bilevel.png": Image.fromarray(grey > 128), "grey.jpg": Image.fromarray(grey, "L"),
      "rgb.bmp": Image.fromarray(rgb), "grey.bmp": Image.fromarray(grey, "L"),
  }
  paths = []
  for name, img in files.items():
    path = os.path.join(folder, name)
    img.save(path, **({"transparency": 3} if name == "palette.png" else {}))
    paths.append(path)
  return paths


def test_training_reader_decodes_every_image_mode_like_the_evaluation_reader(tmp_path):
  paths = write_mode_zoo(str(tmp_path))
  trained_on = pipeline.decode_files(paths, (12, 6), num_parallel_calls=1)
  evaluated_on = images.load_images(paths, (12, 6))
  for path, a, b in zip(paths, trained_on, evaluated_on):
    np.testing.assert_array_equal(a, b, err_msg=os.path.basename(path))
  by_name = dict(zip(map(os.path.basename, paths), trained_on))
  assert by_name["grey16.png"].max() == 255                 # 16-bit stretched, not clipped
  assert tuple(by_name["rgba.png"][0, 0]) == (0, 0, 0)      # transparent over black


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated_png", "truncated_jpeg", "text"])
def test_broken_files_on_the_training_reader_are_refused_naming_the_file(tmp_path, damage):
  good, _ = write_mode_zoo(str(tmp_path))[:2]
  ext = "jpg" if damage == "truncated_jpeg" else "png"
  bad = str(tmp_path / f"broken_{damage}.{ext}")
  buf = tmp_path / f"whole.{ext}"
  Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(buf)
  data = {"zero_bytes": b"", "text": b"not an image"}.get(damage, buf.read_bytes()[:300])
  with open(bad, "wb") as f:
    f.write(data)
  with pytest.raises(images.BadImageError, match=f"broken_{damage}"):
    pipeline.decode_files([good, bad], (12, 6), num_parallel_calls=1)
  assert scan.inspect_image(bad, VISIBLE)[1]  # and the scan reports it


def test_empty_identity_folders_and_listed_ids_without_images_are_dropped_and_reported(
    tmp_path, caplog):
  root = str(tmp_path / "SYSU-MM01")
  synthetic.generate("sysu", root, num_ids=8, seed=1, images_per_cam=(1, 2))
  train_file = os.path.join(root, "exp", "train_id.txt")
  with open(train_file) as f:
    listed = [int(t) for t in f.read().split(",")]
  emptied = listed[0]
  for cam in range(1, 7):
    folder = os.path.join(root, f"cam{cam}", f"{emptied:04d}")
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
      os.remove(os.path.join(folder, name))         # the folder stays, empty
  with open(train_file, "w") as f:
    f.write(",".join(map(str, listed + [9999])))   # an id with no folder at all
  # Converted modes: an RGBA image in a visible camera, a 16-bit one in an infrared camera.
  vis_dir = os.path.join(root, "cam1", f"{listed[1]:04d}")
  ir_dir = os.path.join(root, "cam3", f"{listed[1]:04d}")
  os.makedirs(vis_dir, exist_ok=True)
  os.makedirs(ir_dir, exist_ok=True)
  Image.new("RGBA", (64, 128), (10, 200, 30, 128)).save(os.path.join(vis_dir, "9001.png"))
  Image.fromarray(np.full((128, 64), 40000, np.uint16)).save(os.path.join(ir_dir, "9002.png"))

  with caplog.at_level("WARNING"):
    ts = sysu.load_train(root)
  assert emptied not in ts.class_pids and 9999 not in ts.class_pids
  assert sorted({r.label for r in ts.visible}) == list(range(ts.num_classes))
  assert any(f"{emptied}" in r.getMessage() and "9999" in r.getMessage()
             and "no images" in r.getMessage() for r in caplog.records)

  report = check.check("sysu", root)
  assert report.problems == [f"training ids without any image: {sorted([emptied, 9999])}"]
  text = report.text()
  assert "1 visible image(s) converted to RGB" in text and "RGBA 1" in text
  assert "1 infrared image(s) converted to RGB" in text and "9002.png" in text
  assert re.search(r"camera 1 \(visible\): \d+ images", text)


def test_a_batch_of_more_identities_than_the_dataset_has_is_refused_before_anything_runs(
    tiny_sysu_root, tmp_path):
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match=r"batch.identities=9: larger than the 8 training"):
    trainer.train_and_evaluate(tiny_config(tiny_sysu_root, batch__identities=9), workdir)
  assert not os.path.exists(os.path.join(workdir, "checkpoints"))
