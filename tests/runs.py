"""Tiny end-to-end runs shared by the fault and resume tests.

One uninterrupted reference run (ResNet-10 at 64x64, 3 epochs of 2 steps, an
evaluation after every epoch) is made once per test session, under a file lock
so that pytest-xdist workers share it, with a persistent XLA compilation cache:
only the first run pays for compiling.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import types

import jax
import numpy as np

from vireid_jax import config_defaults
from vireid_jax.data import datasets
from vireid_jax.training import checkpointing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 3 epochs of 2 steps, a checkpoint after each epoch; the learning rate decays at epoch 2,
# so a resume inside the run crosses a schedule change.
TINY = {
    "data.image_size": (64, 64), "data.cache_decoded": False, "model.depth": 10,
    "model.branch_head_dim": 32,
    "batch.identities": 4, "batch.instances": 2, "num_epochs": 3, "steps_per_epoch": 2,
    "log_every_steps": 1, "optim.warmup_epochs": 1, "optim.decay_epochs": (2,),
    "eval.every_epochs": 1, "eval.trials": 2, "eval.batch_size": 16,
    "data.device_prefetch": 2,      # batches made on a thread: stopped and killed runs too
}
TOTAL_STEPS = 6
TIMING_KEYS = ("time", "train/step_time_s", "train/images_per_s", "train/host_cpu_cores",
               "train/input_wait", "time/save_s")


def xla_flags(*flags):
  """XLA_FLAGS for a program a test starts: the test run's and `flags`."""
  return " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def subprocess_env(*flags, **changes):
  """The environment of a program a test starts: CPU, the test run's compilation cache and
  cheap compiles (conftest.py), XLA_FLAGS of `xla_flags(*flags)`; `changes` on top."""
  return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(*flags), **changes)


def tiny_config(data_root, **changes):
  """The in-process twin of `command`: same keys, plus `changes` ("a.b" keys as a__b)."""
  overrides = {**TINY, "data.root": data_root}
  overrides.update({k.replace("__", "."): v for k, v in changes.items()})
  return demo_config(overrides)


def demo_config(overrides):
  """The demo's config (configs/synthetic.py) with `overrides` ({"a.b": value}) set."""
  c = config_defaults.synthetic_demo(config_defaults.base_config())
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = c
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def command(workdir, data_root):
  flags = [f"--config.{k}={v}" for k, v in {**TINY, "data.root": data_root}.items()]
  return [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
          f"--workdir={workdir}"] + flags


def metrics_by_step(workdir):
  """{step: row without timings} of the training rows; a step logged twice keeps its last row.

  Every line must parse: a killed run must not leave a broken row behind.
  """
  rows = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "loss/total" in row:
        rows[row["step"]] = {k: v for k, v in row.items() if k not in TIMING_KEYS}
  return rows


def saved_state(workdir, step=None):
  """(step, whole train state as numpy) of a checkpoint, shaped by its own metadata."""
  ckpt = checkpointing.Checkpointer(workdir)
  step = ckpt.latest_step() if step is None else step
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckpt.latest.item_metadata(step).tree)
  state, _ = ckpt.restore(target, step)
  ckpt.close()
  return step, jax.tree.map(np.asarray, state)


def digest(folder, skip_hidden=False):
  """SHA-256 over (relative path, file bytes) of every file under `folder`, in sorted order.

  skip_hidden: leave out paths that start with "." (the synthetic generator's marker).
  """
  h = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(folder):
    dirnames.sort()
    for name in sorted(filenames):
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, folder).replace(os.sep, "/")
      if skip_hidden and rel.startswith("."):
        continue
      with open(path, "rb") as f:
        h.update(rel.encode() + b"\0" + hashlib.sha256(f.read()).digest())
  return h.hexdigest()


def make_e2e(tmp_path_factory):
  """An uninterrupted reference run of `command`, and what the other runs share.

  Under pytest-xdist the tests of this file may land on both workers: the first one
  here makes the dataset and the reference run in the session's shared folder, under
  a file lock, and the other reuses them. Every run shares the test run's compilation
  cache (conftest.py) with the other tests' programs.
  """
  if os.environ.get("PYTEST_XDIST_WORKER"):
    base = tmp_path_factory.getbasetemp().parent / "faults_e2e"
    base.mkdir(exist_ok=True)
  else:
    base = tmp_path_factory.mktemp("faults_e2e")
  env = subprocess_env()
  data, reference = str(base / "sysu"), str(base / "reference")
  with open(base / "lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      datasets.ensure_synthetic(data, "sysu", num_ids=12, seed=0)
      if not os.path.exists(os.path.join(reference, "results.json")):
        shutil.rmtree(reference, ignore_errors=True)
        res = subprocess.run(command(reference, data), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        with open(base / "reference.log", "w") as f:
          f.write(res.stdout + res.stderr)
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  with open(base / "reference.log") as f:
    log = f.read()
  return types.SimpleNamespace(base=base, env=env, data=data, reference=reference, log=log)


def run_watching(cmd, env, on_line, timeout_s=600):
  """Runs `cmd`, calling `on_line(line, proc)` on each output line until it returns True
  (then reads no further); (exit status, the output read). Killed after `timeout_s`."""
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  watchdog = threading.Timer(timeout_s, proc.kill)
  watchdog.start()
  log = []
  try:
    for line in proc.stdout:
      log.append(line)
      if on_line(line, proc):
        break
    out = proc.communicate()[0]
  finally:
    watchdog.cancel()
  return proc.returncode, "".join(log) + (out or "")
