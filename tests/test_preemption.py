"""SIGTERM (a preemption notice) saves a checkpoint and exits; the same command resumes there."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import runs
from runs import TINY

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


def test_sigterm_checkpoints_and_the_same_command_resumes(tiny_sysu_root, tmp_path):
  workdir = str(tmp_path / "run")
  # The model, batch and schedule of the tests' reference run (runs.TINY, the same dataset):
  # the same compiled programs. 10 epochs of 2 steps, logged every 10 steps.
  keys = {**TINY, "data.root": tiny_sysu_root, "num_epochs": 10, "log_every_steps": 10,
          "eval.every_epochs": 0, "eval.trials": 1}
  cmd = [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
         f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in keys.items()]
  env = runs.subprocess_env()          # the reference run's, whose programs it shares
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  log = []
  watchdog = threading.Timer(600, proc.kill)
  watchdog.start()
  try:
    for line in proc.stdout:        # wait until steps run, well before the first log step (10)
      log.append(line)
      if "train step compiled" in line:
        time.sleep(0.2)
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
  assert 1 <= stopped_at < 10                     # acted on at the next step, not the next log
  assert saved_steps(workdir)[-1] == stopped_at   # saved because of the signal
  assert logged_steps(workdir) == [stopped_at]    # the steps since the last log are logged

  res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert f"resuming at step {stopped_at} of 20" in res.stderr
  assert logged_steps(workdir) == sorted({stopped_at, 10, 20})
  assert os.path.exists(os.path.join(workdir, "results.json"))
