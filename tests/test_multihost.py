"""Several hosts, on one machine: two JAX processes with one CPU device each, as on a cluster.

The processes find each other through JAX's coordination service on a loopback
port and run their collectives with gloo, exactly as `launch/gpu_multi_node.sh`
starts one process per node. The run is the tiny one of `runs.py` (ResNet-10 at
64x64, 3 epochs of 2 steps, an evaluation after every epoch); the reference is
the same run in one process with two simulated devices, whose program is the
same partitioned step, so the two layouts agree to float32 reduction order.

All runs share the persistent XLA compilation cache and the dataset of the runs
of `runs.py`: only the first run of each layout pays for compiling.
"""

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types

import jax
import pytest

from vireid_jax.errors import UserError
from vireid_jax.training import parallel

from runs import ROOT, TOTAL_STEPS, command, metrics_by_step, xla_flags

PROTOCOLS = ("all_single", "all_multi", "indoor_single", "indoor_multi")
TIMEOUT_S = 600          # one start of one process, compiling included

# The real entry point, instrumented: with $RECORD_IDS it appends the identities of every
# host batch it draws ({"step", "ids"}); with $PAUSE_AT=N it prints "PHASE paused" after
# step N and goes on once the file $GO exists (the test signals it first).
CHILD = textwrap.dedent("""
    import json, os, sys, time
    from vireid_jax import main
    from vireid_jax.training import progress, setup

    record, pause_at = os.environ.get("RECORD_IDS"), int(os.environ.get("PAUSE_AT", "0"))
    dataset_batches, add = setup.dataset_batches, progress.ProgressLine.add

    def recorded_batches(config, train_set):
      source = dataset_batches(config, train_set)
      def batches(start_step):
        for step, batch in enumerate(source(start_step), start_step + 1):
          ids = sorted({int(i) for key in ("visible_labels", "infrared_labels")
                        for i in batch[key]})
          with open(record, "a") as f:
            f.write(json.dumps({"step": step, "ids": ids}) + "\\n")
          yield batch
      return batches

    def paused_add(self, metrics, step):
      add(self, metrics, step)
      if step == pause_at:
        print("PHASE paused", flush=True)
        for _ in range(3000):
          if os.path.exists(os.environ["GO"]):
            return
          time.sleep(0.1)

    if record:
      setup.dataset_batches = recorded_batches
    progress.ProgressLine.add = paused_add
    sys.argv = ["vireid_jax.main"] + sys.argv[1:]
    main.run()
""")


def child_command(workdir, data, *flags):
  return [sys.executable, "-c", CHILD] + command(workdir, data)[3:] + list(flags)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def recorded_ids(path) -> dict[int, list[int]]:
  """{step: identities of the host batch}; a step drawn again after a resume keeps its last."""
  with open(path) as f:
    return {row["step"]: row["ids"] for row in map(json.loads, f)}


def tables(log: str) -> list[str]:
  return [line for line in log.splitlines() if line.startswith("| ")]


def results(workdir, name="results.json"):
  with open(os.path.join(workdir, name)) as f:
    return json.load(f)


def assert_same_results(got, want):
  assert got["settings"] == want["settings"]
  for proto in PROTOCOLS:
    for key in ("rank1", "rank10", "mAP", "mINP"):
      assert got[proto][key] == pytest.approx(want[proto][key], abs=1e-3), (proto, key)


def assert_same_losses(workdir, reference):
  got, want = metrics_by_step(workdir), metrics_by_step(reference)
  assert sorted(got) == sorted(want) == list(range(1, TOTAL_STEPS + 1))
  worst = 0.0
  for step in want:
    for key, value in want[step].items():
      if key.startswith("loss/"):
        assert got[step][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
        worst = max(worst, abs(got[step][key] - value) / max(abs(value), 1e-6))
  print(f"losses, 2 processes x 1 device vs 1 process x 2 devices: max relative difference "
        f"{worst:.2e}")


class Hosts:
  """Two processes of one command, process i with JAX_PROCESS_ID=i, each logging to a file."""

  def __init__(self, cmd, env, logs, pause_at=0, go=""):
    port = free_port()
    cmds = cmd if isinstance(cmd[0], list) else [cmd, cmd]     # or one command per process
    self.logs = [f"{logs}.p{i}.log" for i in range(2)]
    self.procs = []
    for i, (cmd, log) in enumerate(zip(cmds, self.logs)):
      penv = dict(env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                  JAX_PROCESS_ID=str(i), PAUSE_AT=str(pause_at), GO=go,
                  RECORD_IDS=f"{logs}.ids{i}.jsonl")
      with open(log, "w") as f:
        self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=penv, stdout=f,
                                           stderr=subprocess.STDOUT, text=True))
    self.watchdog = threading.Timer(TIMEOUT_S, self.kill)
    self.watchdog.start()

  def kill(self):
    for p in self.procs:
      if p.poll() is None:
        p.kill()

  def output(self, i) -> str:
    with open(self.logs[i]) as f:
      return f.read()

  def wait_for(self, i, text):
    while text not in self.output(i):
      assert self.procs[i].poll() is None, self.output(i)[-3000:]
      time.sleep(0.1)

  def wait(self) -> list[int]:
    try:
      return [p.wait() for p in self.procs]
    finally:
      self.watchdog.cancel()


def run_hosts(cmd, env, logs) -> tuple[list[int], list[str]]:
  hosts = Hosts(cmd, env, logs)
  codes = hosts.wait()
  return codes, [hosts.output(i) for i in range(2)]


def test_the_heartbeat_timeout_comes_from_the_environment(monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  monkeypatch.setenv("JAX_PROCESS_ID", "1")
  monkeypatch.delenv(parallel.HEARTBEAT_TIMEOUT_ENV, raising=False)
  parallel.maybe_initialize_distributed()
  monkeypatch.setenv(parallel.HEARTBEAT_TIMEOUT_ENV, "30")
  parallel.maybe_initialize_distributed()
  assert calls == [dict(coordinator_address="127.0.0.1:1234", num_processes=2, process_id=1,
                        heartbeat_timeout_seconds=t) for t in (100, 30)]
  for bad in ("0", "ten", "-5"):
    monkeypatch.setenv(parallel.HEARTBEAT_TIMEOUT_ENV, bad)
    with pytest.raises(UserError, match=parallel.HEARTBEAT_TIMEOUT_ENV):
      parallel.maybe_initialize_distributed()
  assert len(calls) == 2


def test_one_process_agrees_with_itself_without_a_collective():
  assert parallel.agree_across_hosts(7, "a step") == 7
  assert parallel.from_process_zero(25.925925925925927) == 25.925925925925927


@pytest.fixture(scope="session")
def mh(e2e):
  """The reference run, one process with two CPU devices; the env of the two-process runs.

  Beside the one-device reference of `runs.make_e2e`, whose dataset and compilation cache
  it shares; made once per session under a file lock (pytest-xdist workers share it).
  """
  env = dict(e2e.env, JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo", VIREID_HEARTBEAT_TIMEOUT_S="30")
  reference, ids, log = (str(e2e.base / "two_devices"), e2e.base / "two_devices_ids.jsonl",
                         e2e.base / "two_devices.log")
  with open(e2e.base / "two_devices.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if not os.path.exists(os.path.join(reference, "results.json")):
        one = dict(env, XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=2"),
                   RECORD_IDS=str(ids))
        res = subprocess.run(child_command(reference, e2e.data), cwd=ROOT, env=one,
                             capture_output=True, text=True, timeout=TIMEOUT_S)
        assert res.returncode == 0, res.stderr[-3000:]
        with open(log, "w") as f:
          f.write(res.stdout + res.stderr)
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  with open(log) as f:
    text = f.read()
  return types.SimpleNamespace(env=env, data=e2e.data, reference=reference, log=text,
                               ids=recorded_ids(ids))


@pytest.mark.slow
def test_two_processes_train_and_evaluate_like_one_process_with_two_devices(mh, tmp_path):
  workdir = str(tmp_path / "run")
  logs = str(tmp_path / "train")
  hosts = Hosts(child_command(workdir, mh.data), mh.env, logs)
  codes = hosts.wait()
  out = [hosts.output(i) for i in range(2)]
  assert codes == [0, 0], out[0][-3000:] + out[1][-3000:]
  assert "2 cpu device(s) in 2 process(es)" in out[0]

  # The same steps, evaluations, best checkpoint and report as one process with two devices.
  assert_same_losses(workdir, mh.reference)
  assert_same_results(results(workdir), results(mh.reference))
  assert tables(out[0]) == tables(out[1]) == tables(mh.log)
  assert [l for l in out[0].splitlines() if " eval   step " in l] != []

  # Each host drew its own half of every global batch: disjoint identities whose union is
  # the batch of the one-process run.
  ids = [recorded_ids(f"{logs}.ids{i}.jsonl") for i in range(2)]
  for step in range(1, TOTAL_STEPS + 1):
    mine, theirs = set(ids[0][step]), set(ids[1][step])
    assert not mine & theirs, step
    assert len(mine) == len(theirs) == 2, step          # batch.identities=4 over 2 hosts
    assert sorted(mine | theirs) == mh.ids[step], step

  # One workdir, written by process 0 alone: one of each file, one summaries stream (its
  # event file carries the writer's process id), one record in run_info.jsonl.
  names = sorted(os.listdir(workdir))
  events = [n for n in names if n.startswith("events.out.tfevents.")]
  assert [n for n in names if n not in events] == [
      "best", "checkpoints", "config.json", "metrics.jsonl", "results.json", "run_info.jsonl"]
  assert len(events) == 1 and f".{hosts.procs[0].pid}." in events[0], events
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [row["step"] for row in map(json.loads, f) if "loss/total" in row]
  assert steps == list(range(1, TOTAL_STEPS + 1))        # each step once, not once per host
  with open(os.path.join(workdir, "run_info.jsonl")) as f:
    (info,) = [json.loads(line) for line in f]
  assert info["process_count"] == 2 and len(info["devices"]) == 2

  # Evaluating the run again on two processes gives the same table and results.
  before = results(workdir)
  codes, out = run_hosts(child_command(workdir, mh.data, "--config.mode=eval"), mh.env,
                         str(tmp_path / "eval"))
  assert codes == [0, 0], out[0][-3000:] + out[1][-3000:]
  assert tables(out[0]) == tables(out[1]) == tables(mh.log)
  assert results(workdir) == before


@pytest.mark.slow
def test_a_stop_on_one_host_stops_both_a_killed_host_ends_the_other_and_both_resume(mh, tmp_path):
  workdir = str(tmp_path / "run")
  go = str(tmp_path / "go")
  cmd = child_command(workdir, mh.data)

  # SIGTERM to process 1 while it is paused after step 1: both stop after one same step (1, or
  # a later one if the notice reaches the other host late), with a checkpoint.
  hosts = Hosts(cmd, mh.env, str(tmp_path / "stop"), pause_at=1, go=go)
  hosts.wait_for(1, "PHASE paused")
  hosts.procs[1].send_signal(signal.SIGTERM)
  open(go, "w").close()
  codes = hosts.wait()
  out = [hosts.output(i) for i in range(2)]
  assert codes == [143, 143], out[0][-3000:] + out[1][-3000:]
  stops = [re.findall(r"Stopped at step (\d+) with a checkpoint", o) for o in out]
  assert stops[0] == stops[1] and len(stops[0]) == 1, stops
  stopped_at = int(stops[0][0])
  assert 1 <= stopped_at < TOTAL_STEPS    # the stop point the hosts agree on: 1 or later
  assert str(stopped_at) in os.listdir(os.path.join(workdir, "checkpoints"))
  assert not any("Traceback" in o for o in out)

  # The same two commands resume there; SIGKILL of process 1 after its first step ends
  # process 0 with one error line and status 1, promptly, instead of a hang in a collective.
  os.remove(go)
  hosts = Hosts(cmd, mh.env, str(tmp_path / "kill"), pause_at=stopped_at + 1, go=go)
  hosts.wait_for(1, "PHASE paused")
  assert f"resuming at step {stopped_at} of {TOTAL_STEPS}" in hosts.output(0)
  killed = time.time()
  hosts.procs[1].kill()
  open(go, "w").close()
  codes = hosts.wait()
  took = time.time() - killed
  out = hosts.output(0)
  assert codes == [1, -signal.SIGKILL], out[-3000:]
  errors = [line for line in out.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "failed on process 0" in errors[0], out[-3000:]
  assert "start the same command on every host again" in errors[0]
  assert "Traceback" not in out and "Fatal Python error" not in out, out[-3000:]
  assert took < 60, took

  # Both again: the run ends with the losses, evaluations and report of the uninterrupted one.
  codes, out = run_hosts(cmd, mh.env, str(tmp_path / "end"))
  assert codes == [0, 0], out[0][-3000:] + out[1][-3000:]
  assert f"resuming at step {stopped_at} of {TOTAL_STEPS}" in out[0]
  assert_same_losses(workdir, mh.reference)
  assert_same_results(results(workdir), results(mh.reference))
  assert tables(out[0]) == tables(mh.log)


@pytest.mark.slow
def test_hosts_that_see_different_workdirs_are_refused_before_anything_is_written(mh, tmp_path):
  """A workdir on each host's own disk instead of shared storage: found before any write."""
  mine, theirs = tmp_path / "host0", tmp_path / "host1"
  (theirs / "checkpoints").mkdir(parents=True)        # as if an earlier run had saved there
  started = time.time()
  codes, out = run_hosts([child_command(str(mine), mh.data), child_command(str(theirs), mh.data)],
                         mh.env, str(tmp_path / "log"))
  assert codes == [1, 1], out[0][-3000:] + out[1][-3000:]
  for log in out:
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, log[-3000:]
    assert "host 0: 0, host 1: 1" in errors[0] and "same --workdir" in errors[0]
    assert "Traceback" not in log
  assert time.time() - started < 120
  assert not mine.exists() and os.listdir(theirs) == ["checkpoints"]
