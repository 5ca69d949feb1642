"""SYSU-MM01/RegDB protocols: gallery draws, rand_perm_cam files, trials, reports.

The draws are the dataset modules' (`vireid_jax.data.sysu.protocol`); the evaluation
(`evaluation.protocols.evaluate`) runs each dataset's suite."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import zlib

import numpy as np
import pytest

from vireid_jax.data import regdb
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord
from vireid_jax.data.sysu import protocol as sysu_protocol
from vireid_jax.evaluation import metrics, protocols, report

# (pid, cam) -> number of images; (5, 2) and (7, 4) are missing on purpose.
COUNTS = {(1, 1): 12, (1, 2): 3, (1, 4): 20, (1, 5): 1, (1, 3): 4, (1, 6): 3,
          (5, 1): 11, (5, 4): 10, (5, 5): 14, (5, 3): 5,
          (7, 1): 2, (7, 2): 13, (7, 5): 9, (7, 6): 6,
          (12, 1): 15, (12, 2): 16, (12, 4): 4, (12, 5): 10, (12, 3): 3, (12, 6): 2}
TEST_IDS = (1, 5, 7, 12)


@dataclasses.dataclass(frozen=True)
class FakeSysuTest:
  query: tuple
  gallery_files: dict
  test_ids: tuple


@dataclasses.dataclass(frozen=True)
class FakeRegdbTest:
  visible: tuple
  thermal: tuple


@pytest.fixture
def sysu_root(tmp_path):
  """A SYSU-MM01-shaped folder of empty .jpg files (only paths matter here)."""
  root = tmp_path / "SYSU-MM01"
  for (pid, cam), n in COUNTS.items():
    folder = root / f"cam{cam}" / f"{pid:04d}"
    folder.mkdir(parents=True)
    for i in np.random.default_rng(pid * 10 + cam).permutation(n):   # created out of order
      (folder / f"{i + 1:04d}.jpg").write_bytes(b"x")
  (root / "exp").mkdir()
  (root / "exp" / "test_id.txt").write_text(",".join(str(i) for i in TEST_IDS) + "\n")
  return str(root)


def _test_set(root):
  gallery, query = {}, []
  for (pid, cam), _ in sorted(COUNTS.items()):
    folder = os.path.join(root, f"cam{cam}", f"{pid:04d}")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    if cam in (3, 6):
      query.extend(ImageRecord(f, pid, cam, INFRARED) for f in files)
    else:
      gallery[(pid, cam)] = tuple(files)
  return FakeSysuTest(tuple(query), gallery, TEST_IDS)


def agw_process_gallery_sysu(data_path, mode="all", trial=0, shot="single"):
  """AGW's data_manager.process_gallery_sysu (multi-shot: random.sample of up to 10)."""
  random.seed(trial)
  rgb_cameras = ["cam1", "cam2", "cam4", "cam5"] if mode == "all" else ["cam1", "cam2"]
  with open(os.path.join(data_path, "exp/test_id.txt")) as file:
    ids = file.read().splitlines()
    ids = ["%04d" % int(y) for y in ids[0].split(",")]
  files_rgb = []
  for pid in sorted(ids):
    for cam in rgb_cameras:
      img_dir = os.path.join(data_path, cam, pid)
      if os.path.isdir(img_dir):
        new_files = sorted([img_dir + "/" + i for i in os.listdir(img_dir)])
        if shot == "single":
          files_rgb.append(random.choice(new_files))
        else:
          files_rgb.extend(random.sample(new_files, min(10, len(new_files))))
  return [(p, int(p[-13:-9]), int(p[-15])) for p in files_rgb]


@pytest.mark.parametrize("mode", ["all", "indoor"])
@pytest.mark.parametrize("shot", ["single", "multi"])
def test_baseline_draw_equals_agw(sysu_root, mode, shot):
  test_set = _test_set(sysu_root)
  state = random.getstate()
  draws = [sysu_protocol.draw_gallery_baseline(test_set.gallery_files, test_set.test_ids, mode,
                                           shot, t) for t in range(10)]
  assert random.getstate() == state                   # the global stream is untouched
  for trial, ours in enumerate(draws):
    ref = agw_process_gallery_sysu(sysu_root, mode, trial, shot)
    assert [(os.path.normpath(p), i, c) for p, i, c in ours] == \
        [(os.path.normpath(p), i, c) for p, i, c in ref]
  if shot == "single":
    assert len(draws[0]) == sum(1 for (p, c) in test_set.gallery_files
                                if c in sysu_protocol.MODE_CAMERAS[mode])
  else:
    assert len(draws[0]) == sum(min(10, len(f)) for (p, c), f in test_set.gallery_files.items()
                                if c in sysu_protocol.MODE_CAMERAS[mode])
  assert len({tuple(d) for d in draws}) > 1           # trials differ


def test_rand_perm_cam_round_trip_and_official_draw(sysu_root, tmp_path):
  test_set = _test_set(sysu_root)
  perms = sysu_protocol.make_rand_perm(test_set.gallery_files, trials=10, seed=3)
  path = str(tmp_path / "rand_perm_cam.mat")
  sysu_protocol.write_rand_perm_cam(path, perms)
  loaded = sysu_protocol.load_rand_perm_cam(path)
  assert len(loaded.cells) == 6 and all(len(c) == 333 for c in loaded.cells)
  for (cam, pid), m in perms.items():
    np.testing.assert_array_equal(loaded.perm(cam, pid), m)
  assert loaded.perm(3, 1).shape == (0, 0)            # cells never written stay empty
  for trial in (0, 9):
    for shot, k in (("single", 1), ("multi", 10)):
      ours = sysu_protocol.draw_gallery_official(test_set.gallery_files, test_set.test_ids, "all",
                                             shot, trial, loaded)
      expected = [(test_set.gallery_files[(pid, cam)][i - 1], pid, cam)
                  for pid in TEST_IDS for cam in (1, 2, 4, 5) if (pid, cam) in test_set.gallery_files
                  for i in perms[(cam, pid)][trial, :k]]
      assert ours == expected


def test_rand_perm_cam_errors(sysu_root, tmp_path):
  test_set = _test_set(sysu_root)
  with pytest.raises(FileNotFoundError, match="rand_perm_cam"):
    sysu_protocol.load_rand_perm_cam(str(tmp_path / "missing.mat"))
  import scipy.io
  wrong = str(tmp_path / "wrong.mat")
  scipy.io.savemat(wrong, {"something": np.zeros((2, 2))})
  with pytest.raises(ValueError, match="no variable 'rand_perm_cam'"):
    sysu_protocol.load_rand_perm_cam(wrong)
  broken = str(tmp_path / "broken.mat")
  open(broken, "wb").write(b"garbage")
  with pytest.raises(ValueError, match="broken.mat"):
    sysu_protocol.load_rand_perm_cam(broken)
  # An index past the folder's image count, and too few trial rows.
  perms = sysu_protocol.make_rand_perm(test_set.gallery_files, trials=2)
  perms[(1, 1)][0, 0] = 99
  path = str(tmp_path / "bad_index.mat")
  sysu_protocol.write_rand_perm_cam(path, perms)
  loaded = sysu_protocol.load_rand_perm_cam(path)
  with pytest.raises(ValueError, match="camera 1, person 1.*image index 99"):
    sysu_protocol.draw_gallery_official(test_set.gallery_files, TEST_IDS, "all", "single", 0, loaded)
  with pytest.raises(ValueError, match="trial 5 needs row 6"):
    sysu_protocol.draw_gallery_official(test_set.gallery_files, TEST_IDS, "all", "single", 5, loaded)
  empty = str(tmp_path / "empty.mat")
  sysu_protocol.write_rand_perm_cam(empty, {})
  with pytest.raises(ValueError, match="cell is empty but the folder has 12 images"):
    sysu_protocol.draw_gallery_official(test_set.gallery_files, TEST_IDS, "all", "single", 0,
                                    sysu_protocol.load_rand_perm_cam(empty))
  small = str(tmp_path / "small.mat")
  first = {k: v for k, v in sysu_protocol.make_rand_perm(test_set.gallery_files).items() if k[1] == 1}
  sysu_protocol.write_rand_perm_cam(small, first, num_ids=3)
  with pytest.raises(ValueError, match="person id 5 is outside the 3"):
    sysu_protocol.draw_gallery_official(test_set.gallery_files, TEST_IDS, "all", "single", 0,
                                    sysu_protocol.load_rand_perm_cam(small))


def _pid_of(path):
  return int(os.path.basename(os.path.dirname(path)))


def _fake_extractor(calls, noise):
  """Features = one-hot identity + per-image noise (a deterministic hash of the path)."""
  def extract(paths, modality):
    calls.append((modality, list(paths)))
    out = np.zeros((len(paths), 16), np.float32)
    for i, p in enumerate(paths):
      rng = np.random.default_rng(zlib.crc32(p.encode()))
      out[i, _pid_of(p) % 16] = 1.0
      out[i] += noise * rng.standard_normal(16)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
  return extract


def test_sysu_protocols_extract_once_and_match_direct_metrics(sysu_root):
  test_set = _test_set(sysu_root)
  calls = []
  extract = _fake_extractor(calls, noise=0.8)
  res = protocols.evaluate(sysu_protocol.SUITE, test_set, extract, trials=3)
  assert set(res) == {"all_single", "all_multi", "indoor_single", "indoor_multi"}
  # One call per modality; every gallery image at most once.
  assert [m for m, _ in calls] == [INFRARED, VISIBLE]
  gallery_paths = calls[1][1]
  assert len(gallery_paths) == len(set(gallery_paths))
  drawn = {p for m in ("all", "indoor") for s in ("single", "multi") for t in range(3)
           for p, _, _ in sysu_protocol.draw_gallery_baseline(test_set.gallery_files, TEST_IDS, m, s, t)}
  assert set(gallery_paths) == drawn
  # Each trial equals the metrics computed directly on that draw.
  q = extract([r.path for r in test_set.query], INFRARED)
  for mode in ("all", "indoor"):
    for shot in ("single", "multi"):
      r = res[f"{mode}_{shot}"]
      assert r["trials"] == 3 and len(r["per_trial"]) == 3
      for t in range(3):
        gal = sysu_protocol.draw_gallery_baseline(test_set.gallery_files, TEST_IDS, mode, shot, t)
        g = extract([p for p, _, _ in gal], VISIBLE)
        direct = metrics.evaluate(-(q @ g.T), np.array([x.label for x in test_set.query]),
                                  np.array([e[1] for e in gal]),
                                  np.array([x.camera for x in test_set.query]),
                                  np.array([e[2] for e in gal]), rule=sysu_protocol.CAMERA_RULE)
        assert r["per_trial"][t]["rank1"] == pytest.approx(100 * direct["cmc"][0], abs=1e-9)
        assert r["per_trial"][t]["rank10"] == pytest.approx(100 * direct["cmc"][9], abs=1e-9)
        assert r["per_trial"][t]["mAP"] == pytest.approx(100 * direct["mAP"], abs=1e-4)
        assert r["per_trial"][t]["mINP"] == pytest.approx(100 * direct["mINP"], abs=1e-4)
      vals = [t["mAP"] for t in r["per_trial"]]
      assert r["mAP"] == pytest.approx(np.mean(vals)) and r["std"]["mAP"] == pytest.approx(np.std(vals))


def test_sysu_protocols_perfect_features_official_rule_and_rerank(sysu_root, tmp_path):
  test_set = _test_set(sysu_root)
  path = str(tmp_path / "rand_perm_cam.mat")
  sysu_protocol.write_rand_perm_cam(path, sysu_protocol.make_rand_perm(test_set.gallery_files))
  for rerank in (False, True):
    res = protocols.evaluate(sysu_protocol.SUITE, test_set, _fake_extractor([], noise=0.0),
                             trials=2, gallery_rule="official", rand_perm_cam=path,
                             rows=("all_multi",), rerank=rerank)
    assert list(res) == ["all_multi"]
    for key in protocols.METRIC_KEYS:
      assert res["all_multi"][key] == pytest.approx(100.0)
      assert res["all_multi"]["std"][key] == pytest.approx(0.0)
  with pytest.raises(ValueError, match="needs rand_perm_cam"):
    protocols.evaluate(sysu_protocol.SUITE, test_set, _fake_extractor([], 0.0),
                       gallery_rule="official")
  with pytest.raises(ValueError, match="max_rank"):
    protocols.evaluate(sysu_protocol.SUITE, test_set, _fake_extractor([], 0.0), max_rank=10)


def test_regdb_protocols_both_directions(tmp_path):
  rng = np.random.default_rng(0)
  vis = tuple(ImageRecord(f"/r/Visible/{p}/v{i}.bmp", p, 1, VISIBLE) for p in range(6) for i in range(3))
  th = tuple(ImageRecord(f"/r/Thermal/{p}/t{i}.bmp", p, 2, INFRARED) for p in range(6) for i in range(3))
  feats = {r.path: rng.standard_normal(8).astype(np.float32) for r in vis + th}
  calls = []

  def extract(paths, modality):
    calls.append(modality)
    f = np.stack([feats[p] for p in paths])
    return f / np.linalg.norm(f, axis=1, keepdims=True)

  res = protocols.evaluate(regdb.SUITE, FakeRegdbTest(vis, th), extract)
  assert calls == [VISIBLE, INFRARED]
  v = extract([r.path for r in vis], 0)
  t = extract([r.path for r in th], 1)
  pids = np.array([r.label for r in vis])
  v2t = metrics.evaluate(-(v @ t.T), pids, pids, distinct_ids=False)
  t2v = metrics.evaluate(-(t @ v.T), pids, pids, distinct_ids=False)
  assert res["visible_to_thermal"]["mAP"] == pytest.approx(100 * v2t["mAP"], abs=1e-4)
  assert res["thermal_to_visible"]["rank1"] == pytest.approx(100 * t2v["cmc"][0])
  assert res["thermal_to_visible"]["trials"] == 1
  assert res["thermal_to_visible"]["std"]["mAP"] == 0.0


def test_report_table_and_json(tmp_path):
  results = {"all_single": protocols.summarize([
      {"rank1": 50.0, "rank10": 80.0, "rank20": 90.0, "mAP": 40.0, "mINP": 30.0},
      {"rank1": 60.0, "rank10": 90.0, "rank20": 94.0, "mAP": 50.0, "mINP": 20.0}])}
  table = report.format_table(results, "sysu")
  assert "| all_single | 2 | 55.00 ± 5.00 | 85.00 ± 5.00 | 92.00 ± 2.00 | 45.00 ± 5.00 | " \
         "25.00 ± 5.00 |" in table
  assert "Rank-1" in table and "mINP" in table
  path = tmp_path / "sub" / "results.json"
  report.write_results_json(str(path), "sysu", results)
  data = json.loads(path.read_text())
  assert data["dataset"] == "sysu"
  assert data["all_single"]["rank1"] == 55.0 and data["all_single"]["std"]["rank20"] == 2.0
  assert data["all_single"]["trials"] == 2 and "per_trial" not in data["all_single"]
  assert os.listdir(path.parent) == ["results.json"]   # no temporary file left behind
  with pytest.raises(ValueError, match="No protocol results"):
    report.format_table({}, "sysu")


def test_through_the_sysu_reader_when_present(sysu_root):
  sysu = pytest.importorskip("vireid_jax.data.sysu")
  test_set = sysu.load_test(sysu_root)
  ours = _test_set(sysu_root)
  assert tuple(test_set.test_ids) == TEST_IDS
  assert {k: tuple(v) for k, v in test_set.gallery_files.items()} == ours.gallery_files
  assert sorted(r.path for r in test_set.query) == sorted(r.path for r in ours.query)
  draw = sysu_protocol.draw_gallery_baseline(test_set.gallery_files, test_set.test_ids, "all",
                                             "single", 0)
  assert draw == [(os.path.normpath(p), i, c) for p, i, c in agw_process_gallery_sysu(sysu_root)]
