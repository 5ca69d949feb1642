"""SYSU-MM01 / RegDB readers and the dataset check, on generated data, vs independent counts."""

import logging
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from vireid_jax import config_defaults
from vireid_jax.data import check, datasets, regdb, synthetic, sysu
from vireid_jax.data.images import BadImageError
from vireid_jax.data.images import load_image
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.errors import DataError


@pytest.fixture(scope="module")
def sysu_src(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("sysu_src") / "SYSU-MM01")
  synthetic.generate("sysu", root, num_ids=8, seed=1, images_per_cam=(1, 2))
  return root


@pytest.fixture(scope="module")
def regdb_src(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("regdb_src") / "RegDB")
  synthetic.generate("regdb", root, num_ids=6, seed=1, images_per_cam=(3, 3))
  return root


@pytest.fixture
def sysu_copy(sysu_src, tmp_path):
  """A private copy for tests that damage the dataset."""
  return shutil.copytree(sysu_src, str(tmp_path / "SYSU-MM01"))


@pytest.fixture
def regdb_copy(regdb_src, tmp_path):
  return shutil.copytree(regdb_src, str(tmp_path / "RegDB"))


def ids_of(root, name):
  with open(os.path.join(root, "exp", name)) as f:
    return [int(t) for t in f.read().split(",")]


def walk_images(root, cam, pid):
  """Independent listing: what is on disk for (camera, person), sorted."""
  found = []
  for dirpath, _, names in os.walk(os.path.join(root, f"cam{cam}")):
    if os.path.basename(dirpath) == f"{pid:04d}":
      found += [os.path.join(dirpath, n) for n in names]
  return sorted(found)


# ---------------------------------------------------------------------------- SYSU-MM01

def test_sysu_train_matches_the_folders(sysu_src):
  ts = sysu.load_train(sysu_src)
  pids = sorted(ids_of(sysu_src, "train_id.txt") + ids_of(sysu_src, "val_id.txt"))
  assert ts.class_pids == tuple(pids) and ts.num_classes == len(pids)
  expect_vis = [(p, pid_label, cam) for pid_label, pid in enumerate(pids)
                for cam in (1, 2, 4, 5) for p in walk_images(sysu_src, cam, pid)]
  expect_ir = [(p, pid_label, cam) for pid_label, pid in enumerate(pids)
               for cam in (3, 6) for p in walk_images(sysu_src, cam, pid)]
  assert [(r.path, r.label, r.camera) for r in ts.visible] == expect_vis
  assert [(r.path, r.label, r.camera) for r in ts.infrared] == expect_ir
  assert {r.modality for r in ts.visible} == {VISIBLE}
  assert {r.modality for r in ts.infrared} == {INFRARED}
  assert all(os.path.isabs(r.path) for r in ts.visible + ts.infrared)
  assert ts.num_images == len(expect_vis) + len(expect_ir)


def test_sysu_test_split(sysu_src):
  te = sysu.load_test(sysu_src)
  test_ids = sorted(ids_of(sysu_src, "test_id.txt"))
  assert te.test_ids == tuple(test_ids)
  # AGW process_query_sysu order: ids ascending, cam3 then cam6, sorted files.
  expect_query = [(p, pid, cam) for pid in test_ids for cam in (3, 6)
                  for p in walk_images(sysu_src, cam, pid)]
  assert [(r.path, r.label, r.camera) for r in te.query] == expect_query
  assert {r.modality for r in te.query} == {INFRARED}
  expect_gallery = {(pid, cam): tuple(walk_images(sysu_src, cam, pid)) for pid in test_ids
                    for cam in (1, 2, 4, 5) if walk_images(sysu_src, cam, pid)}
  assert te.gallery_files == expect_gallery
  assert list(te.gallery_files) == sorted(te.gallery_files)


def test_sysu_relative_root(sysu_src, monkeypatch):
  monkeypatch.chdir(os.path.dirname(sysu_src))
  ts = sysu.load_train(os.path.basename(sysu_src))
  assert os.path.isabs(ts.visible[0].path) and os.path.exists(ts.visible[0].path)


def test_sysu_drops_ids_without_images_and_warns(sysu_copy, caplog):
  pids = sorted(ids_of(sysu_copy, "train_id.txt") + ids_of(sysu_copy, "val_id.txt"))
  gone = pids[1]
  for cam in range(1, 7):
    shutil.rmtree(os.path.join(sysu_copy, f"cam{cam}", f"{gone:04d}"), ignore_errors=True)
  with caplog.at_level(logging.WARNING):
    ts = sysu.load_train(sysu_copy)
  assert ts.class_pids == tuple(p for p in pids if p != gone)
  assert sorted({r.label for r in ts.visible}) == list(range(len(pids) - 1))
  assert any(str(gone) in rec.getMessage() and "no images" in rec.getMessage()
             for rec in caplog.records)


def test_sysu_errors(sysu_copy, tmp_path):
  with pytest.raises(FileNotFoundError, match="No SYSU-MM01 root"):
    sysu.load_train("")
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match=r"(?s)cam1.*exp/train_id.txt.*request it"):
    sysu.load_train(str(empty))
  os.remove(os.path.join(sysu_copy, "exp", "val_id.txt"))
  with pytest.raises(FileNotFoundError, match=r"val_id\.txt.*request it"):
    sysu.load_train(sysu_copy)
  sysu.load_test(sysu_copy)   # the test split needs only test_id.txt
  with open(os.path.join(sysu_copy, "exp", "val_id.txt"), "w") as f:
    f.write("1,2,x3")
  with pytest.raises(ValueError, match=r"val_id\.txt: 'x3' is not an integer"):
    sysu.load_train(sysu_copy)
  shutil.rmtree(os.path.join(sysu_copy, "cam6"))
  with pytest.raises(FileNotFoundError, match="cam6"):
    sysu.load_test(sysu_copy)


@pytest.mark.parametrize("name", ["train_id.txt", "val_id.txt", "test_id.txt"])
@pytest.mark.parametrize("content,match", [
    (b"", "lists no person ids"), (b" \n,\n", "lists no person ids"),
    (b"1;2;3", "'1;2;3' is not an integer"), (b"\xff\xfe\x00\x01", "not a text file")])
def test_sysu_bad_id_files_are_data_errors_naming_the_file(sysu_copy, name, content, match):
  with open(os.path.join(sysu_copy, "exp", name), "wb") as f:
    f.write(content)
  load = sysu.load_test if name == "test_id.txt" else sysu.load_train
  with pytest.raises(DataError, match=rf"(?s){name}.*{match}") as e:
    load(sysu_copy)
  assert "SYSU-MM01" in str(e.value)   # says where to get the file again


def test_sysu_test_set_without_query_or_gallery(sysu_copy):
  test_ids = ids_of(sysu_copy, "test_id.txt")
  for cam in (1, 2, 4, 5):
    for pid in test_ids:
      shutil.rmtree(os.path.join(sysu_copy, f"cam{cam}", f"{pid:04d}"), ignore_errors=True)
  with pytest.raises(DataError, match="no RGB gallery images"):
    sysu.load_test(sysu_copy)
  for cam in (3, 6):
    for pid in test_ids:
      shutil.rmtree(os.path.join(sysu_copy, f"cam{cam}", f"{pid:04d}"), ignore_errors=True)
  with pytest.raises(DataError, match="no IR query images"):
    sysu.load_test(sysu_copy)


def files_config(name, root):
  c = config_defaults.base_config()
  c.data.name, c.data.root = name, root
  return c.data


def test_check_test_set_passes_and_finds_empty_images(sysu_copy, regdb_copy, tmp_path):
  for name, root in (("sysu", sysu_copy), ("regdb", regdb_copy)):
    datasets.check_test_set(files_config(name, root), str(tmp_path))
  # A zero-byte gallery image: found at start-up, named, without decoding anything.
  _, test_set = datasets.load_test_set(files_config("sysu", sysu_copy), str(tmp_path))
  victim = sorted(test_set.gallery_files.items())[-1][1][0]
  open(victim, "wb").close()
  with pytest.raises(BadImageError, match=rf"(?s){victim}.*gallery.*0 bytes"):
    datasets.check_test_set(files_config("sysu", sysu_copy), str(tmp_path))
  # RegDB: an empty test list.
  open(os.path.join(regdb_copy, "idx", "test_thermal_1.txt"), "w").close()
  with pytest.raises(DataError, match=r"test_thermal_1\.txt lists no images"):
    datasets.check_test_set(files_config("regdb", regdb_copy), str(tmp_path))
  # An empty SYSU test_id.txt.
  open(os.path.join(sysu_copy, "exp", "test_id.txt"), "w").close()
  with pytest.raises(DataError, match=r"test_id\.txt lists no person ids"):
    datasets.check_test_set(files_config("sysu", sysu_copy), str(tmp_path))


# ---------------------------------------------------------------------------- RegDB

def idx_lines(root, name):
  with open(os.path.join(root, "idx", name)) as f:
    return [line.split() for line in f if line.strip()]


@pytest.mark.parametrize("trial", [1, 7])
def test_regdb_train_and_test(regdb_src, trial):
  ts = regdb.load_train(regdb_src, trial)
  lines = idx_lines(regdb_src, f"train_visible_{trial}.txt")
  train_pids = sorted({int(rel.split("/")[1]) for rel, _ in lines})
  # Independent count from the folders: every image of the train ids.
  n_vis = sum(len(os.listdir(os.path.join(regdb_src, "Visible", str(p)))) for p in train_pids)
  n_th = sum(len(os.listdir(os.path.join(regdb_src, "Thermal", str(p)))) for p in train_pids)
  assert (len(ts.visible), len(ts.infrared)) == (n_vis, n_th) == (9, 9)
  assert ts.num_classes == 3 and ts.class_pids == tuple(train_pids)
  assert [r.label for r in ts.visible] == [int(label) for _, label in lines]
  assert [r.path for r in ts.visible] == [os.path.join(regdb_src, rel) for rel, _ in lines]
  assert {(r.camera, r.modality) for r in ts.visible} == {(1, VISIBLE)}
  assert {(r.camera, r.modality) for r in ts.infrared} == {(2, INFRARED)}
  for r in ts.visible + ts.infrared:
    assert ts.class_pids[r.label] == int(r.path.split(os.sep)[-2])

  te = regdb.load_test(regdb_src, trial)
  test_pids = sorted(set(range(1, 7)) - set(train_pids))
  assert (len(te.visible), len(te.thermal)) == (9, 9)
  assert sorted({r.label for r in te.visible}) == [p - 1 for p in test_pids]
  thermal_lines = idx_lines(regdb_src, f"test_thermal_{trial}.txt")
  assert [r.label for r in te.thermal] == [int(label) for _, label in thermal_lines]
  assert {r.modality for r in te.thermal} == {INFRARED}


def test_regdb_errors(regdb_copy, tmp_path):
  with pytest.raises(ValueError, match="trial"):
    regdb.load_train(regdb_copy, 11)
  with pytest.raises(ValueError, match="trial"):
    regdb.load_test(regdb_copy, 0)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match=r"(?s)Visible.*idx/train_visible_1.txt.*Dongguk"):
    regdb.load_train(str(empty), 1)
  os.remove(os.path.join(regdb_copy, "idx", "test_thermal_2.txt"))
  with pytest.raises(FileNotFoundError, match=r"test_thermal_2\.txt"):
    regdb.load_test(regdb_copy, 2)

  # An idx line naming a missing image: the message names the idx file, the line and the image.
  rel, _ = idx_lines(regdb_copy, "train_thermal_3.txt")[4]
  os.remove(os.path.join(regdb_copy, rel))
  with pytest.raises(FileNotFoundError) as e:
    regdb.load_train(regdb_copy, 3)
  msg = str(e.value)
  assert "train_thermal_3.txt, line 5" in msg and rel in msg and "does not exist" in msg

  with open(os.path.join(regdb_copy, "idx", "train_visible_4.txt"), "a") as f:
    f.write("Visible/1/broken_line_without_label.bmp\n")
  with pytest.raises(DataError, match=r"train_visible_4\.txt, line 10"):
    regdb.load_train(regdb_copy, 4)

  # Empty or not text: a DataError naming the file, not a traceback.
  for content in (b"", b"\n\n", b"\xff\xfe\x00garbage"):
    with open(os.path.join(regdb_copy, "idx", "train_visible_6.txt"), "wb") as f:
      f.write(content)
    with pytest.raises(DataError,
                       match=r"train_visible_6\.txt (lists no images|is not a text file)"):
      regdb.load_train(regdb_copy, 6)


def test_regdb_refuses_non_contiguous_train_labels(regdb_copy):
  path = os.path.join(regdb_copy, "idx", "train_visible_5.txt")
  with open(path) as f:
    text = f.read()
  with open(path, "w") as f:
    f.write(text.replace(" 2\n", " 7\n"))
  with pytest.raises(ValueError, match=r"train_visible_5\.txt: training labels must be contiguous"):
    regdb.load_train(regdb_copy, 5)


# ---------------------------------------------------------------------------- images

def test_one_and_three_channel_files_read_as_rgb(sysu_src, regdb_src):
  ts = sysu.load_train(sysu_src)
  rg = regdb.load_train(regdb_src, 1)
  for path, mode in ((ts.visible[0].path, "RGB"), (ts.infrared[0].path, "L"),
                     (rg.visible[0].path, "RGB"), (rg.infrared[0].path, "L")):
    with Image.open(path) as img:
      assert img.mode == mode
    arr = load_image(path)
    assert arr.shape == (128, 64, 3) and arr.dtype == np.uint8
    if mode == "L":
      assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2])
    assert load_image(path, size=(64, 32)).shape == (64, 32, 3)


# ---------------------------------------------------------------------------- check tool

def test_check_passes_clean_data(sysu_src, regdb_src, capsys):
  assert check.main(["--dataset=sysu", f"--root={sysu_src}"]) == 0
  out = capsys.readouterr().out
  assert "No problems found." in out and "camera 3 (infrared)" in out
  assert check.main(["--dataset=regdb", f"--root={regdb_src}", "--trial=2"]) == 0


def test_check_finds_bad_files(sysu_copy, capsys):
  ts = sysu.load_train(sysu_copy)
  zero, truncated, grey = ts.visible[0].path, ts.infrared[0].path, ts.visible[-1].path
  open(zero, "wb").close()
  with open(truncated, "rb") as f:
    data = f.read()
  with open(truncated, "wb") as f:
    f.write(data[:len(data) // 2])
  Image.open(grey).convert("L").save(grey)
  report = check.check("sysu", sysu_copy)
  assert not report.ok
  text = "\n".join(report.problems)
  assert f"{zero}: zero-byte file" in text
  assert f"{truncated}: cannot decode" in text
  assert f"{grey}: unexpected mode 'L' for a visible image" in text
  assert len(report.problems) == 3
  assert check.main(["--dataset=sysu", f"--root={sysu_copy}"]) == 1
  assert "3 problem(s)" in capsys.readouterr().out


def test_check_reports_a_broken_regdb_trial(regdb_copy):
  os.remove(os.path.join(regdb_copy, "idx", "test_visible_6.txt"))
  report = check.check("regdb", regdb_copy, (5, 6), decode=False)
  assert len(report.problems) == 1 and "trial 6" in report.problems[0]
