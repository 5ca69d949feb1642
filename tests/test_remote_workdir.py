"""Workdirs on object storage (`--workdir=gs://BUCKET/run`), tested offline on a fake store.

`fake_gcs` serves epath's `gs://` paths from a local folder; the program takes
its remote code path unchanged. Every test checks both halves: what it wrote
is in the store, and nothing appeared locally (a `gs:` folder is what a URL
that went through `os.path` becomes).
"""

import json
import os
import subprocess
import sys

import pytest
from etils import epath

import fake_gcs
from runs import ROOT, command
from vireid_jax import config_defaults, fileio
from vireid_jax.errors import ConfigError, UserError
from vireid_jax.data import datasets
from vireid_jax.evaluation import report
from vireid_jax.training import checkpointing, reporting, run_info, summaries

URL = "gs://bucket/run"


def files_under(folder) -> list[str]:
  return sorted(os.path.relpath(os.path.join(d, n), folder)
                for d, _, names in os.walk(folder) for n in names)


def no_local_url_folders(*folders):
  for folder in folders:
    for d, dirs, _ in os.walk(folder):
      assert not [x for x in dirs if x.startswith("gs:")], d


@pytest.fixture
def store(tmp_path, monkeypatch):
  """The fake bucket store, with the working directory in an empty folder of its own."""
  root = tmp_path / "store"
  root.mkdir()
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  monkeypatch.setenv("EPATH_USE_TF", "false")
  patch = fake_gcs.install(root)
  yield root
  patch.stop()
  epath.gpath._is_tf_installed.cache_clear()  # pylint: disable=protected-access
  assert os.listdir(cwd) == [], os.listdir(cwd)       # nothing written locally
  no_local_url_folders(tmp_path, ROOT)


def test_urls_stay_urls_and_local_paths_become_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert str(fileio.as_path(URL) / "checkpoints") == f"{URL}/checkpoints"
  assert fileio.is_remote(fileio.as_path(URL)) and not fileio.is_remote("runs/a")
  assert str(fileio.as_path("runs/a")) == str(tmp_path / "runs" / "a")
  assert str(fileio.as_path("~/x")) == os.path.expanduser("~/x")
  with pytest.raises(UserError, match="unsupported storage scheme"):
    fileio.as_path("ftp://host/run")


def test_workdir_files_are_written_to_the_store_and_read_back(store):
  config = config_defaults.synthetic_demo(config_defaults.base_config())
  run_info.write(URL, config, extra={"num_classes": 8})
  config.seed = 3
  run_info.write(URL, config, extra={"num_classes": 8})    # a second start: appended, noted
  assert run_info.read_config(URL).seed == 3
  assert run_info.read_last_record(URL)["config_changed"] == ["seed"]

  writer = summaries.JsonlWriter(f"{URL}/metrics.jsonl", image_dir=f"{URL}/images")
  writer.write_scalars(1, {"loss/total": 2.5})
  writer.write_images(1, {"eval/rank_list": [[[[0.5, 0.5, 0.5]]]]})
  writer.close()
  # A row cut short (only possible on a local disk, but read robustly anywhere) is dropped.
  with open(store / "bucket" / "run" / "metrics.jsonl", "a") as f:
    f.write('{"step": 2, "loss/tot')
  writer = summaries.JsonlWriter(f"{URL}/metrics.jsonl")
  writer.write_scalars(3, {"loss/total": 1.5})
  writer.close()

  results = {"all_single": {"rank1": 50.0, "rank10": 90.0, "rank20": 95.0, "mAP": 40.0,
                            "mINP": 30.0}}
  report.write_results_json(f"{URL}/results.json", "synthetic_sysu", results, {"step": 6})
  assert reporting.read_results(fileio.as_path(URL) / "results.json")["settings"] == {"step": 6}

  bucket = store / "bucket" / "run"
  assert files_under(bucket) == ["config.json", "images/eval_rank_list_1.png", "metrics.jsonl",
                                 "results.json", "run_info.jsonl"]
  with open(bucket / "metrics.jsonl") as f:
    assert [json.loads(line)["step"] for line in f] == [1, 3]
  with open(bucket / "run_info.jsonl") as f:
    assert len(f.readlines()) == 2


def test_checkpoints_are_handed_to_orbax_as_urls(store):
  ckpt = checkpointing.Checkpointer(URL, read_only=True)
  try:
    assert str(ckpt.latest.directory) == f"{URL}/checkpoints"
    assert str(ckpt.best.directory) == f"{URL}/best"
    assert ckpt.latest_step() is None
  finally:
    ckpt.close()


def test_the_synthetic_dataset_is_never_generated_under_a_remote_workdir(store):
  config = config_defaults.synthetic_demo(config_defaults.base_config())
  with pytest.raises(ConfigError, match=r"--config.data.root=DIR"):
    datasets.load_train_set(config.data, fileio.as_path(URL))
  assert files_under(store) == []


def test_a_remote_workdir_without_a_data_root_is_refused_before_any_work(tmp_path):
  res = subprocess.run([sys.executable, "-m", "vireid_jax.main",
                        f"--config={ROOT}/configs/synthetic.py", f"--workdir={URL}"],
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT),
                       capture_output=True, text=True, timeout=300)
  assert res.returncode == 2, res.stderr
  errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "data.root" in errors[0] and URL in errors[0], res.stderr
  assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_run_on_a_remote_workdir_writes_every_file_there_and_nothing_locally(e2e, tmp_path):
  """The tiny run of `runs.py` with --workdir=gs://...: train, run again, plot its rank list."""
  store, cwd = tmp_path / "store", tmp_path / "cwd"
  store.mkdir()
  cwd.mkdir()
  record = tmp_path / "handed_over.jsonl"
  env = dict(e2e.env, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  child = [sys.executable, "-c", f"import fake_gcs; fake_gcs.main({str(store)!r}, {str(record)!r})"]
  train = child + command(URL, e2e.data)[3:]

  res = subprocess.run(train, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert f"workdir   {URL} (new run)" in res.stderr
  run = store / "bucket" / "run"
  names = files_under(run)
  for name in ("config.json", "run_info.jsonl", "metrics.jsonl", "results.json"):
    assert name in names, names
  assert any(n.startswith("events.out.tfevents.") for n in names), names
  assert any(n.startswith("checkpoints/6/") for n in names), names
  assert any(n.startswith("best/") for n in names), names
  with open(run / "results.json") as f, open(os.path.join(e2e.reference, "results.json")) as g:
    assert json.load(f) == json.load(g)          # the same run as on a local disk
  with open(record) as f:
    handed = [json.loads(line) for line in f]
  assert {h["library"] for h in handed} == {"orbax", "tensorboard"}
  assert all(h["path"].startswith(f"{URL}/") or h["path"] == URL for h in handed), handed

  # The same command again reads the store, finds the run complete and changes nothing.
  before = {n: os.path.getmtime(run / n) for n in names}
  res = subprocess.run(train, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0 and "This run is complete" in res.stdout + res.stderr, res.stderr
  assert {n: os.path.getmtime(run / n) for n in files_under(run)} == before

  # A tool writes its plots beside the run.
  res = subprocess.run(child + ["-m", "vireid_jax.tools.visualize_ranks", "--workdir", URL,
                                "--num_queries", "2", "--topk", "3"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert {"plots/rank_list.png", "plots/rank_list.json"} <= set(files_under(run))

  assert os.listdir(cwd) == []
  no_local_url_folders(tmp_path, ROOT)
