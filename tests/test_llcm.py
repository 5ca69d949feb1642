"""LLCM: the reader, the protocol against a second implementation of its definition
(tests/llcm_reference.py), hand-computed cases, bad input, the check, the synthetic layout
and the TFDS records. The end-to-end run is tests/test_llcm_e2e.py."""

import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vireid_jax.data import check, registry, synthetic
from vireid_jax.data.llcm import LlcmTestSet, load_test, load_train
from vireid_jax.data.llcm import layout as llcm_layout
from vireid_jax.data.llcm import protocol as llcm_protocol
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord
from vireid_jax.errors import DataError
from vireid_jax.evaluation import metrics, protocols

# pylint: disable=wrong-import-order
from llcm_reference import (FOLDERS, ROWS, assert_rows_match, hashed_features,
                            reference_gallery, reference_query, reference_rows)
from runs import digest
# pylint: enable=wrong-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def llcm_src(tmp_path_factory):
  """A generated LLCM-layout folder: 12 ids (4 for testing), 1-4 images per folder."""
  root = str(tmp_path_factory.mktemp("llcm_src") / "LLCM")
  synthetic.generate("llcm", root, num_ids=12, seed=2, images_per_cam=(1, 4),
                     image_size=(64, 32))
  return root


@pytest.fixture
def llcm_copy(llcm_src, tmp_path):
  """A private copy for tests that damage the dataset."""
  return shutil.copytree(llcm_src, str(tmp_path / "LLCM"))


# ---------------------------------------------------------------- against the definition

def test_query_lists_and_every_trials_gallery_follow_the_definition(llcm_src):
  test_set = load_test(llcm_src)
  suite = registry.get("llcm").suite
  for modality in (VISIBLE, INFRARED):
    paths, pids, cams = reference_query(llcm_src, modality)
    records = test_set.records(modality)
    assert [r.path for r in records] == paths and len(paths) > 10
    assert [r.label for r in records] == list(pids)
    assert [r.camera for r in records] == list(cams)
    assert {r.modality for r in records} == {modality}
  state = random.getstate()
  galleries = set()
  for t in range(10):
    vis_q, vis_g = protocols.images_of(suite, test_set, "infrared_to_visible", t)
    nir_q, nir_g = protocols.images_of(suite, test_set, "visible_to_infrared", t)
    deen_q, deen_g = protocols.images_of(suite, test_set, "deen_visible_to_infrared", t)
    for modality, drawn in ((VISIBLE, vis_g), (INFRARED, nir_g), (INFRARED, deen_q)):
      paths, pids, cams = reference_gallery(llcm_src, modality, t)
      assert list(drawn.paths) == paths
      np.testing.assert_array_equal(drawn.pids, pids)
      np.testing.assert_array_equal(drawn.cameras, cams)
    assert list(vis_q.paths) == reference_query(llcm_src, INFRARED)[0]
    assert list(nir_q.paths) == list(deen_g.paths) == reference_query(llcm_src, VISIBLE)[0]
    galleries.add(vis_g.paths)
  random.setstate(state)
  assert len(galleries) > 1                  # the trials draw different galleries


def test_three_rows_equal_the_definition_on_every_trial(llcm_src):
  test_set = load_test(llcm_src)
  extract = hashed_features(noise=0.9)
  calls = []

  def counted(paths, modality):
    calls.append((modality, len(paths), len(set(paths))))
    return extract(paths, modality)

  results = protocols.evaluate(registry.get("llcm").suite, test_set, counted, trials=10)
  assert list(results) == list(ROWS)
  # Each modality embedded once, each image once: the galleries are subsets of the queries.
  assert sorted(m for m, _, _ in calls) == [VISIBLE, INFRARED]
  assert {(m, n) for m, n, _ in calls} == {(VISIBLE, len(test_set.visible)),
                                           (INFRARED, len(test_set.infrared))}
  assert all(n == unique for _, n, unique in calls)
  assert_rows_match(results, reference_rows(llcm_src, extract, 10))
  rank1 = {row: results[row]["rank1"] for row in ROWS}
  assert len(set(rank1.values())) == 3 and 0 < min(rank1.values()) < 100, rank1


def test_perfect_features_rerank_and_the_official_rule(llcm_src):
  suite = registry.get("llcm").suite
  test_set = load_test(llcm_src)
  perfect = protocols.evaluate(suite, test_set, hashed_features(0.0), trials=2)
  for row in ROWS:
    assert perfect[row]["rank1"] == pytest.approx(100.0)
    assert perfect[row]["mAP"] == pytest.approx(100.0)
  reranked = protocols.evaluate(suite, test_set, hashed_features(0.0), trials=1, rerank=True,
                                rows=["deen_visible_to_infrared"])
  assert reranked["deen_visible_to_infrared"]["rank1"] == pytest.approx(100.0)
  with pytest.raises(ValueError, match="llcm galleries are drawn by 'baseline'"):
    protocols.evaluate(suite, test_set, hashed_features(0.5), gallery_rule="official")


# ---------------------------------------------------------------- hand-computed cases

def test_same_identity_same_camera_removal_hand_computed():
  rule = llcm_protocol.RULE
  # One query (id 1, camera 2). The gallery, ranked by distance:
  #   g0 id1 cam2 (removed), g1 id3 cam1, g2 id1 cam4, g3 id2 cam2 (kept: another identity),
  #   g4 id1 cam2 (removed), g5 id1 cam5.
  d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
  g_pids, g_cams = np.array([1, 3, 1, 2, 1, 1]), np.array([2, 1, 4, 2, 2, 5])
  out = metrics.evaluate(d, np.array([1]), g_pids, np.array([2]), g_cams, rule=rule,
                         max_rank=4)
  # Kept: [id3, id1, id2, id1]; distinct ids [3, 1, 2]: found at rank 2.
  np.testing.assert_allclose(out["cmc"], [0, 1, 1, 1])
  # Positives at ranks 2 and 4 of the kept list: AP = (1/2 + 2/4) / 2, INP = 2 / 4.
  assert out["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-15)
  assert out["mINP"] == pytest.approx(0.5, abs=1e-15)
  # Without the rule the same query is found at rank 1 with positives at 1, 3, 5, 6.
  plain = metrics.evaluate(d, np.array([1]), g_pids, max_rank=4)
  np.testing.assert_allclose(plain["cmc"], [1, 1, 1, 1])
  assert plain["mAP"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5 + 4 / 6) / 4, abs=1e-15)
  # A query whose only positives share its camera is skipped; the other one counts.
  two = metrics.evaluate(np.array([[0.1, 0.2], [0.2, 0.1]]), np.array([1, 2]),
                         np.array([1, 2]), np.array([3, 3]), np.array([3, 5]), rule=rule,
                         max_rank=2)
  np.testing.assert_allclose(two["cmc"], [1, 1])
  assert two["mAP"] == 1.0 and two["mINP"] == 1.0
  np.testing.assert_array_equal(
      rule.mask(np.array([1]), np.array([2]), g_pids, g_cams),
      [[True, False, False, False, True, False]])


def _record(path, pid, cam, modality):
  return ImageRecord(f"/llcm/{path}", pid, cam, modality)


ANGLES = {"/llcm/v/a.jpg": 0, "/llcm/v/b.jpg": 50, "/llcm/v/c.jpg": 100,
          "/llcm/n/0001.jpg": 10, "/llcm/n/0002.jpg": 200, "/llcm/n/y.jpg": 60}


def _by_angle(paths, modality):
  del modality
  rad = np.radians([ANGLES[p] for p in paths])
  return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def test_deen_variant_transposes_the_distances_hand_computed():
  """Visible a (id1 cam1, 0 deg), b (id1 cam2, 50), c (id2 cam1, 100); infrared x (id1 cam1,
  10; file 0001), x2 (id1 cam1, 200; file 0002, the same folder), y (id2 cam4, 60).
  Distance = -cos(angle difference). Every folder but (id1, cam1) of the infrared side holds
  one image, so the infrared draw of trial t is [x or x2, y]."""
  test_set = LlcmTestSet(
      visible=(_record("v/a.jpg", 1, 1, VISIBLE), _record("v/b.jpg", 1, 2, VISIBLE),
               _record("v/c.jpg", 2, 1, VISIBLE)),
      infrared=(_record("n/0001.jpg", 1, 1, INFRARED), _record("n/0002.jpg", 1, 1, INFRARED),
                _record("n/y.jpg", 2, 4, INFRARED)),
      test_ids=(1, 2))
  trials = 6
  results = protocols.evaluate(registry.get("llcm").suite, test_set, _by_angle, trials=trials)
  x_drawn = [random.Random(t).choice(["/llcm/n/0001.jpg", "/llcm/n/0002.jpg"]) ==
             "/llcm/n/0001.jpg" for t in range(trials)]
  assert 0 < sum(x_drawn) < trials                # both cases occur
  # infrared_to_visible (every infrared image; the visible draw is a, b, c every trial):
  #   x  (10): a removed (id1 cam1); [b 40 deg, c 90] -> rank 1, AP 1
  #   x2 (200): a removed; [c 100 deg, b 150] -> id2 then id1: rank 2, AP 1/2, INP 1/2
  #   y  (60): [b 10, c 40, a 60] -> id1, id2: rank 2, AP 1/2
  row = results["infrared_to_visible"]
  assert row["rank1"] == pytest.approx(100 / 3) and row["mAP"] == pytest.approx(200 / 3)
  assert row["std"]["rank1"] == pytest.approx(0.0, abs=1e-9)
  # visible_to_infrared (every visible image against [x or x2, y]):
  #   a: x or x2 removed (id1 cam1) -> no positive: skipped
  #   b (50): with x: [y 10, x 40] -> rank 2, AP 1/2; with x2: [y 10, x2 150] -> the same
  #   c (100): y (40) first -> rank 1, AP 1
  row = results["visible_to_infrared"]
  assert row["rank1"] == pytest.approx(50.0) and row["mAP"] == pytest.approx(75.0)
  assert row["mINP"] == pytest.approx(75.0)
  # deen_visible_to_infrared (the drawn infrared images query every visible image):
  #   x (10): a removed; [b 40, c 90] -> rank 1, AP 1  |  x2 (200): a removed; [c, b] -> rank 2
  #   y (60): [b 10, c 40, a 60] -> rank 2, AP 1/2, INP 1/2
  row = results["deen_visible_to_infrared"]
  expected_r1 = [50.0 if x else 0.0 for x in x_drawn]
  expected_map = [75.0 if x else 50.0 for x in x_drawn]
  assert [t["rank1"] for t in row["per_trial"]] == pytest.approx(expected_r1)
  assert [t["mAP"] for t in row["per_trial"]] == pytest.approx(expected_map)
  assert row["rank1"] == pytest.approx(np.mean(expected_r1))


# ---------------------------------------------------------------- reader and bad input

def test_training_lists_are_read_as_written(llcm_src):
  train = load_train(llcm_src)
  for name, records in (("train_vis.txt", train.visible), ("train_nir.txt", train.infrared)):
    with open(os.path.join(llcm_src, "idx", name)) as f:
      lines = [line.split() for line in f if line.strip()]
    assert [r.path for r in records] == [os.path.join(llcm_src, rel) for rel, _ in lines]
    assert [r.label for r in records] == [int(label) for _, label in lines]
    assert [r.camera for r in records] == [int(rel.split("/")[1][3:]) for rel, _ in lines]
  assert sorted({r.label for r in train.visible}) == list(range(train.num_classes))
  for r in train.visible + train.infrared:
    assert train.class_pids[r.label] == int(r.path.split(os.sep)[-2])
  with open(os.path.join(llcm_src, "idx", "test_id.txt")) as f:
    test_ids = {int(t) for t in f.read().split(",")}
  assert not test_ids & set(train.class_pids) and len(train.class_pids) == 8


def test_bad_input_is_refused_naming_the_file(llcm_copy):
  idx = os.path.join(llcm_copy, "idx")
  # A label list naming a missing file.
  with open(os.path.join(idx, "train_nir.txt")) as f:
    rel = f.read().splitlines()[3].split()[0]
  os.remove(os.path.join(llcm_copy, rel))
  with pytest.raises(FileNotFoundError, match=rf"train_nir\.txt, line 4 names '{rel}'"):
    load_train(llcm_copy)
  # A missing idx/ file.
  os.remove(os.path.join(idx, "train_vis.txt"))
  with pytest.raises(FileNotFoundError, match=r"incomplete: missing .*idx/train_vis\.txt"):
    load_train(llcm_copy)
  os.remove(os.path.join(idx, "test_id.txt"))
  with pytest.raises(FileNotFoundError, match=r"missing .*idx/test_id\.txt"):
    load_test(llcm_copy)


def test_bad_test_folders_are_refused(llcm_copy):
  idx = os.path.join(llcm_copy, "idx", "test_id.txt")
  with open(idx) as f:
    ids = f.read()
  # A test id with no images.
  with open(idx, "w") as f:
    f.write(ids + ",9999")
  with pytest.raises(DataError, match=r"test ids \[9999\] .*have no images"):
    load_test(llcm_copy)
  with open(idx, "w") as f:
    f.write(ids)
  load_test(llcm_copy)
  # An empty (person, camera) folder: the draw could not choose from it.
  test_set = load_test(llcm_copy)
  folder = os.path.dirname(test_set.infrared[0].path)
  for name in os.listdir(folder):
    os.remove(os.path.join(folder, name))
  with pytest.raises(DataError, match=rf"{folder} holds no images"):
    load_test(llcm_copy)
  os.rmdir(folder)
  load_test(llcm_copy)
  # An empty camera folder, and a missing one.
  cam = os.path.join(llcm_copy, "test_vis", "cam5")
  shutil.rmtree(cam)
  os.mkdir(cam)
  with pytest.raises(DataError, match=r"test_vis/cam5/ holds no person folder with images"):
    load_test(llcm_copy)
  os.rmdir(cam)
  with pytest.raises(FileNotFoundError, match=r"missing .*test_vis/cam5"):
    load_test(llcm_copy)


def test_main_refuses_bad_data_before_any_work_with_one_line(llcm_copy, tmp_path):
  shutil.rmtree(os.path.join(llcm_copy, "test_nir", "cam7"))
  os.mkdir(os.path.join(llcm_copy, "test_nir", "cam7"))
  workdir = tmp_path / "run"
  res = subprocess.run(
      [sys.executable, "-m", "vireid_jax.main", f"--config={ROOT}/configs/synthetic.py",
       f"--workdir={workdir}", "--config.data.name=llcm", f"--config.data.root={llcm_copy}"],
      capture_output=True, text=True, cwd=ROOT, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert res.returncode == 1, res.stderr[-2000:]
  errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "test_nir/cam7/ holds no person folder with images" in errors[0]
  assert "Traceback" not in res.stderr
  assert not workdir.exists()                  # nothing written


def test_check_reports_counts_and_broken_files(llcm_copy, capsys):
  assert check.main(["--dataset=llcm", f"--root={llcm_copy}"]) == 0
  out = capsys.readouterr().out
  assert "LLCM at" in out and "camera 9 (infrared)" in out and "No problems found." in out
  victim = load_test(llcm_copy).visible[2].path
  open(victim, "wb").close()
  assert check.main(["--dataset=llcm", f"--root={llcm_copy}", "--no_decode"]) == 0
  report = check.check("llcm", llcm_copy)
  assert report.problems == [f"{victim}: zero-byte file"]
  with pytest.raises(SystemExit):
    check.main(["--dataset=llcm", f"--root={llcm_copy}", "--trial=2"])   # no numbered splits


# ---------------------------------------------------------------- the synthetic layout

def test_layout_and_byte_identical_output_whatever_the_worker_count(llcm_src, tmp_path):
  # Two worker processes, from the command line (no JAX in the forked process).
  subprocess.run([sys.executable, "-m", "vireid_jax.data.synthetic", "--layout=llcm",
                  f"--out={tmp_path / 'two'}", "--num_ids=12", "--seed=2", "--images_per_cam",
                  "1", "4", "--image_size", "64", "32", "--workers=2"],
                 check=True, cwd=ROOT, capture_output=True, timeout=300)
  assert digest(str(tmp_path / "two")) == digest(llcm_src)
  synthetic.generate("llcm", str(tmp_path / "other"), num_ids=12, seed=3, images_per_cam=(1, 4),
                     image_size=(64, 32))
  assert digest(str(tmp_path / "other")) != digest(llcm_src)
  assert sorted(os.listdir(os.path.join(llcm_src, "test_nir"))) == FOLDERS[INFRARED][1]
  assert sorted(os.listdir(os.path.join(llcm_src, "test_vis"))) == FOLDERS[VISIBLE][1]
  assert not os.path.exists(os.path.join(llcm_src, "train_nir", "cam3"))
  # Each camera films one place in both modalities: a shared background.
  assert (llcm_layout.CAMERAS[VISIBLE][4].scene == llcm_layout.CAMERAS[INFRARED][4].scene
          != llcm_layout.CAMERAS[VISIBLE][5].scene)
  with pytest.raises(ValueError, match="no validation list"):
    synthetic.generate("llcm", str(tmp_path / "bad"), num_ids=12, val_ids=2)
  sheet = tmp_path / "sheet.png"
  synthetic.sample_sheet(llcm_src, "llcm", str(sheet), rows=3)
  assert sheet.stat().st_size > 1000


# ---------------------------------------------------------------- TFDS records

def test_tfds_records_give_the_same_records_and_results(llcm_src, tmp_path):
  pytest.importorskip("tensorflow_datasets")
  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp
  from vireid_jax import config_defaults
  from vireid_jax.data import datasets, prepare_tfds
  from vireid_jax.evaluation import features
  # pylint: enable=g-import-not-at-top
  size = (48, 32)
  tfds_dir = str(tmp_path / "tfds")
  prepare_tfds.main(["--dataset=llcm", f"--manual_dir={llcm_src}", f"--data_dir={tfds_dir}",
                     "--encoding=png", "--image_size=48,32"])
  assert os.path.isdir(os.path.join(tfds_dir, "llcm", "48x32_png"))

  def embed(weights, x, modality):
    del weights, modality
    return x.reshape(x.shape[0], 4, 12, 2, 16, 3).mean(axis=(2, 4)).reshape(x.shape[0], -1) \
        + 0.0 * jnp.sum(x)

  results = {}
  for source in ("files", "tfds"):
    c = config_defaults.base_config()
    c.data.name, c.data.synthetic_layout, c.data.root = "synthetic", "llcm", llcm_src
    c.data.source, c.data.tfds_dir, c.data.image_size = source, tfds_dir, size
    train = datasets.load_train_set(c.data, str(tmp_path))
    layout, test_set = datasets.load_test_set(c.data, str(tmp_path))
    extract = features.make_extractor(embed, size, 8,
                                      image_source=datasets.test_image_source(c.data))
    results[source] = (train, test_set,
                       protocols.evaluate(registry.get(layout).suite, test_set, extract, trials=2))
  assert results["files"][0] == results["tfds"][0] and results["files"][0].num_images > 100
  assert results["files"][1] == results["tfds"][1]
  assert results["files"][2] == results["tfds"][2] and set(results["files"][2]) == set(ROWS)
