"""SIGTERM (a preemption notice) saves a checkpoint and exits; the same command resumes there."""

import json
import os
import signal
import subprocess
import sys
import time

from vireid_jax.data import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(l)["step"] for l in f if '"loss/total"' in l]


def test_sigterm_checkpoints_and_the_same_command_resumes(tmp_path):
  data = str(tmp_path / "sysu")
  datasets.ensure_synthetic(data, "sysu", num_ids=12, seed=0)
  workdir = str(tmp_path / "run")
  cmd = [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
         f"--workdir={workdir}", f"--config.data.root={data}", "--config.data.image_size=(64, 64)",
         "--config.data.cache_decoded=False", "--config.model.branch_head_dim=32",
         "--config.batch.identities=4", "--config.batch.instances=2", "--config.num_epochs=3",
         "--config.steps_per_epoch=20", "--config.log_every_steps=1",
         "--config.eval.every_epochs=0", "--config.eval.trials=1", "--config.eval.batch_size=16"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  deadline = time.time() + 600
  while not logged_steps(workdir) or max(logged_steps(workdir)) < 2:
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    assert time.time() < deadline, "training did not start"
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-3000:]
  assert "saving a checkpoint and stopping" in out
  stopped_at = max(logged_steps(workdir))
  assert 2 <= stopped_at < 60
  saved = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  assert saved == [stopped_at], (saved, stopped_at)   # mid-epoch: saved because of the signal

  res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  steps = logged_steps(workdir)
  assert steps == list(range(1, 61)), steps   # resumed at stopped_at + 1, nothing repeated
  assert os.path.exists(os.path.join(workdir, "results.json"))
