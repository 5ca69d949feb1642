"""SIGTERM (a preemption notice) saves a checkpoint and exits; the same command resumes there."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from vireid_jax.data import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(l)["step"] for l in f if '"loss/total"' in l]


def saved_steps(workdir):
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []


def test_sigterm_checkpoints_and_the_same_command_resumes(tmp_path):
  data = str(tmp_path / "sysu")
  datasets.ensure_synthetic(data, "sysu", num_ids=12, seed=0)
  workdir = str(tmp_path / "run")
  cmd = [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
         f"--workdir={workdir}", f"--config.data.root={data}", "--config.data.image_size=(64, 64)",
         "--config.data.cache_decoded=False", "--config.model.branch_head_dim=32",
         "--config.batch.identities=4", "--config.batch.instances=2", "--config.num_epochs=3",
         "--config.steps_per_epoch=20", "--config.log_every_steps=50",
         "--config.eval.every_epochs=0", "--config.eval.trials=1", "--config.eval.batch_size=16"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  log = []
  watchdog = threading.Timer(600, proc.kill)
  watchdog.start()
  try:
    for line in proc.stdout:        # wait until steps run, well before the first log step (50)
      log.append(line)
      if "train step compiled" in line:
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        break
    out = "".join(log) + proc.communicate()[0]
  finally:
    watchdog.cancel()
  assert proc.returncode == 143, out[-3000:]    # not "finished": a scheduler requeues it
  assert "saving a checkpoint and stopping" in out
  m = re.search(r"Stopped at step (\d+) with a checkpoint", out)
  assert m, out[-3000:]
  stopped_at = int(m.group(1))
  assert 1 <= stopped_at < 50                     # acted on at the next step, not the next log
  assert saved_steps(workdir)[-1] == stopped_at   # saved because of the signal
  assert logged_steps(workdir) == [stopped_at]    # the steps since the last log are logged

  res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert f"resuming at step {stopped_at} of 60" in res.stderr
  assert logged_steps(workdir) == sorted({stopped_at, 50, 60})
  assert os.path.exists(os.path.join(workdir, "results.json"))
