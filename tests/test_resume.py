"""A run stopped or killed at any phase ends like the uninterrupted one; refused starts change
nothing; config mistakes are one line before any work; the console stays short.

Every run here is the tiny command of `runs.py` (or its reference run), as a user types it.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from vireid_jax.data import datasets

from runs import ROOT, TOTAL_STEPS, command, digest, metrics_by_step, run_watching

# The real entry point in a child that pauses at one phase boundary, given as KIND:N in
# $PAUSE_AT, and prints "PHASE paused" there; it goes on when the file $GO exists (the test
# signals it first). KIND: step (after step N's update), saved (checkpoint N on disk), eval
# (the N-th periodic evaluation of this start, before it runs), report (the final report).
INSTRUMENTED_MAIN = textwrap.dedent("""
    import os, sys, time
    from vireid_jax import main
    from vireid_jax.evaluation import evaluators
    from vireid_jax.training import checkpointing, progress

    kind, n = os.environ["PAUSE_AT"].split(":")
    n, evals = int(n), []

    def pause():
      print("PHASE paused", flush=True)
      for _ in range(1200):
        if os.path.exists(os.environ["GO"]):
          return
        time.sleep(0.1)

    run, save, add = (evaluators.RetrievalEvaluator.run, checkpointing.Checkpointer.save,
                      progress.ProgressLine.add)

    def paused_run(self, variables, **kwargs):
      evals.append(self.prefix)
      if (kind == "eval" and self.prefix == "eval" and evals.count("eval") == n
          or kind == "report" and self.prefix == "test"):
        pause()
      return run(self, variables, **kwargs)

    def paused_save(self, step, state, record=None):
      save(self, step, state, record)
      if kind == "saved" and step == n:
        self.wait()
        pause()

    def paused_add(self, metrics, step):
      add(self, metrics, step)
      if kind == "step" and step == n:
        pause()

    evaluators.RetrievalEvaluator.run = paused_run
    checkpointing.Checkpointer.save = paused_save
    progress.ProgressLine.add = paused_add
    sys.argv = ["vireid_jax.main"] + sys.argv[1:]
    main.run()
""")


def run_paused(cmd, env, pause_at, sig, go_file):
  """Runs `cmd` paused at `pause_at`, sends `sig` there, lets it go on; (status, output)."""
  if os.path.exists(go_file):
    os.remove(go_file)

  def signal_at_pause(line, proc):
    if not line.startswith("PHASE paused"):
      return False
    proc.send_signal(sig)
    with open(go_file, "w"):
      pass
    return sig == signal.SIGKILL          # nothing more to read from a killed process

  return run_watching(cmd, dict(env, PAUSE_AT=pause_at, GO=go_file), signal_at_pause)


def eval_rows(workdir):
  """{step: {tag: value}} of the evaluation rows (eval/* and test*/*), the last row winning."""
  rows = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      tags = {k: v for k, v in row.items() if k.startswith(("eval/", "test"))}
      if tags:
        rows.setdefault(row["step"], {}).update(tags)
  return rows


def results(workdir, name="results.json"):
  with open(os.path.join(workdir, name)) as f:
    return json.load(f)


def test_killed_and_stopped_at_every_phase_the_run_ends_like_an_uninterrupted_one(e2e, tmp_path):
  workdir = str(tmp_path / "run")
  cmd = [sys.executable, "-c", INSTRUMENTED_MAIN] + command(workdir, e2e.data)[3:]
  go = str(tmp_path / "go")
  # (where to pause, signal there, expected exit status), one start each. TINY evaluates
  # after every epoch (steps 2, 4, 6), before the checkpoint of that step.
  phases = [
      ("step:1", signal.SIGTERM, 143),               # mid-epoch
      ("saved:2", signal.SIGKILL, -signal.SIGKILL),  # right after a checkpoint
      ("eval:1", signal.SIGKILL, -signal.SIGKILL),   # in a periodic evaluation (step 4)
      ("eval:2", signal.SIGTERM, 143),               # in the last one (step 6, after 4 again)
      ("report:1", signal.SIGKILL, -signal.SIGKILL), # in the final report
  ]
  logs = []
  for pause_at, sig, status in phases:
    code, out = run_paused(cmd, e2e.env, pause_at, sig, go)
    logs.append(out)
    assert code == status, (pause_at, out[-3000:])
    assert "Traceback" not in out, out[-3000:]
  assert "Stopped at step 1 with a checkpoint" in logs[0]
  assert "Stopped at step 6 with a checkpoint" in logs[3]
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  assert "resuming at step 2 of" in logs[2] and "resuming at step 2 of" in logs[3]
  code, out = run_paused(cmd, e2e.env, "none:0", None, go)
  assert code == 0, out[-3000:]
  assert f"resuming at step {TOTAL_STEPS} of {TOTAL_STEPS}" in out
  assert "eval   step" not in out          # the evaluation at 6 was recorded: not run again
  assert "report: best checkpoint" in out  # the report was not: it runs now

  ref = results(e2e.reference)
  got = results(workdir)
  assert got["settings"] == ref["settings"]          # the same best checkpoint, by step
  for proto in ("all_single", "all_multi", "indoor_single", "indoor_multi"):
    for key in ("rank1", "rank10", "mAP", "mINP"):
      assert got[proto][key] == pytest.approx(ref[proto][key], abs=1e-4), (proto, key)
  want, have = eval_rows(e2e.reference), eval_rows(workdir)
  assert sorted(want) == sorted(have) == [2, 4, 6]
  for step in want:
    assert have[step].keys() == want[step].keys(), step
    for tag, value in want[step].items():
      assert have[step][tag] == pytest.approx(value, abs=1e-4), (step, tag)
  assert sorted(metrics_by_step(workdir)) == list(range(1, TOTAL_STEPS + 1))

  # Once complete, the same command again changes nothing and says where the results are.
  before = digest(workdir)
  code, out = run_paused(command(workdir, e2e.data), e2e.env, "none:0", None, go)
  assert code == 0 and "This run is complete" in out, out[-3000:]
  assert "| all_single |" in out
  assert digest(workdir) == before


def test_a_refused_restart_leaves_the_workdir_byte_for_byte_unchanged(e2e, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(e2e.reference, workdir)
  before = digest(workdir)
  res = subprocess.run(command(workdir, e2e.data) + ["--config.model.branch_head_dim=48"],
                       cwd=ROOT, env=e2e.env, capture_output=True, text=True, timeout=600)
  assert res.returncode == 1, res.stderr[-3000:]
  assert "another model config" in res.stderr and "config.json" in res.stderr
  assert "Traceback" not in res.stderr
  assert digest(workdir) == before


@pytest.mark.parametrize("flag, words", [
    ("--config.optim.learning_rate=0.1", ["optim.learning_rate: no such config key"]),
    ("--config.data.name=sysuu",
     ["data.name='sysuu'", ", ".join(repr(name) for name in datasets.names())]),
    ("--config.model.branch=layr4", ["model.branch='layr4'", "'layer4', 'head'"]),
    ("--config.num_epochs=0", ["num_epochs=0: must be >= 1"]),
    ("--config.optim.lr_new=abc", ["--config.optim.lr_new=abc", "could not convert"]),
])
def test_config_mistakes_are_one_line_before_any_work(tmp_path, flag, words):
  workdir = tmp_path / "run"
  res = subprocess.run([sys.executable, "-m", "vireid_jax.main",
                        f"--config={ROOT}/configs/synthetic.py", f"--workdir={workdir}", flag],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert res.returncode == 2, res.stderr
  errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, res.stderr
  for w in words:
    assert w in errors[0], res.stderr
  assert "vireid_jax/config_defaults.py" in res.stderr
  assert "Traceback" not in res.stderr
  assert not workdir.exists()        # nothing generated, nothing written


def test_usage_text_with_no_arguments_or_help():
  for args, status in (([], 2), (["--help"], 0)):
    res = subprocess.run([sys.executable, "-m", "vireid_jax.main"] + args, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == status
    assert "--config=configs/synthetic.py --workdir=workdirs/demo" in res.stdout
    assert "python -m pytest -q -n 2 tests" in res.stdout
    assert "vireid_jax/config_defaults.py" in res.stdout


def test_eval_mode_reads_the_runs_config_and_names_other_settings(e2e, tmp_path):
  """A user evaluating with another config file and a new image size, nothing else."""
  workdir = str(tmp_path / "run")
  shutil.copytree(e2e.reference, workdir)
  with open(os.path.join(workdir, "results.json"), "rb") as f:
    report = f.read()
  entries = set(os.listdir(workdir))
  res = subprocess.run(
      [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/sysu.py",
       f"--workdir={workdir}", "--config.mode=eval", "--config.data.image_size=(64, 48)"],
      cwd=ROOT, env=e2e.env, capture_output=True, text=True, timeout=600)
  assert res.returncode == 0, res.stderr[-3000:]
  with open(os.path.join(workdir, "results.json"), "rb") as f:
    assert f.read() == report                       # the run's report is never replaced
  other = results(workdir, "results_64x48.json")
  assert other["settings"]["image_size"] == [64, 48]
  assert other["settings"]["step"] == json.loads(report)["settings"]["step"]
  made = {e for e in set(os.listdir(workdir)) - entries if not e.startswith("events.out")}
  assert made == {"results_64x48.json"}          # and no dataset generated
  assert "test_64x48/all_single/rank1" in eval_rows(workdir)[other["settings"]["step"]]
  assert oct(os.stat(os.path.join(workdir, "results_64x48.json")).st_mode & 0o044) == oct(0o044)


LIBRARY_LINES = re.compile(r"orbax|absl|Got texts|work unit|I\d{4} |W\d{4} |tensorflow|"
                           r"CheckpointManager|Platform '")


def test_the_console_is_short_and_holds_no_library_logs(e2e):
  lines = e2e.log.splitlines()
  assert len(lines) <= 45, e2e.log
  assert not [l for l in lines if LIBRARY_LINES.search(l)], e2e.log
  assert sum(l.startswith("| all_single |") for l in lines) == 1       # the table once
  progress = [l for l in lines if re.search(rf" step +\d+/{TOTAL_STEPS} \| epoch", l)]
  assert len(progress) == TOTAL_STEPS                                    # log_every_steps=1
  assert sum(" eval   step " in l for l in lines) == 3
  for key in ("workdir", "data", "model", "schedule", "summaries"):
    assert any(re.match(rf"\d\d:\d\d:\d\d {key} ", l) for l in lines), key


@pytest.mark.parametrize("damage", ["empty_test_ids", "zero_byte_query"])
def test_a_broken_test_set_stops_the_run_before_its_first_step(e2e, tmp_path, damage):
  data = str(tmp_path / "sysu")
  shutil.copytree(e2e.data, data)
  if damage == "empty_test_ids":
    open(os.path.join(data, "exp", "test_id.txt"), "w").close()
    named = "test_id.txt"
  else:
    with open(os.path.join(data, "exp", "test_id.txt")) as f:
      pid = int(f.read().split(",")[0])
    folder = os.path.join(data, "cam3", f"{pid:04d}")
    named = os.path.join(folder, sorted(os.listdir(folder))[0])
    open(named, "w").close()
  workdir = tmp_path / "run"
  res = subprocess.run(command(str(workdir), data), cwd=ROOT, env=e2e.env, capture_output=True,
                       text=True, timeout=600)
  assert res.returncode == 1, res.stderr[-3000:]
  errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and named in errors[0], res.stderr[-3000:]
  assert "Traceback" not in res.stderr
  assert not workdir.exists()          # refused before anything was written
