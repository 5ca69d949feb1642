"""Synthetic generator: exact layouts, determinism, modes, and that it is a fair VI-ReID task."""

import dataclasses
import filecmp
import functools
import hashlib
import os
import re

import numpy as np
import pytest
from PIL import Image

from vireid_jax.data import synthetic
from vireid_jax.data.regdb import layout as regdb_layout
from vireid_jax.data.render import palettes
from vireid_jax.data.synthetic import cli, marker
from vireid_jax.data.sysu import layout as sysu_layout
from vireid_jax.data.images import load_image

from runs import digest

H, W = 128, 64


@pytest.fixture(scope="module")
def sysu_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("sysu") / "data")
  synthetic.generate("sysu", root, num_ids=10, seed=3, images_per_cam=(1, 3))
  return root


@pytest.fixture(scope="module")
def regdb_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("regdb") / "data")
  synthetic.generate("regdb", root, num_ids=4, seed=3)
  return root


def read_ids(path):
  with open(path) as f:
    text = f.read()
  assert "\n" not in text.strip(), f"{path} must be one line"
  assert re.fullmatch(r"\d+(,\d+)*", text.strip()), text
  return [int(t) for t in text.strip().split(",")]


# ---------------------------------------------------------------------------- layouts

def test_sysu_layout_is_exact(sysu_root):
  assert sorted(os.listdir(sysu_root)) == [
      ".complete", "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "exp"]
  assert marker.read_marker(sysu_root) == {"layout": "sysu", "num_ids": "10", "seed": "3",
                                           "images_per_cam": "1,3", "image_size": "128,64"}
  assert sorted(os.listdir(os.path.join(sysu_root, "exp"))) == [
      "test_id.txt", "train_id.txt", "val_id.txt"]
  split = {s: read_ids(os.path.join(sysu_root, "exp", f"{s}_id.txt"))
           for s in ("train", "val", "test")}
  assert [len(split[s]) for s in ("train", "val", "test")] == [6, 1, 3]
  all_ids = split["train"] + split["val"] + split["test"]
  assert len(set(all_ids)) == 10
  on_disk = set()
  for cam in range(1, 7):
    for person in os.listdir(os.path.join(sysu_root, f"cam{cam}")):
      assert re.fullmatch(r"\d{4}", person), person
      on_disk.add(int(person))
      names = sorted(os.listdir(os.path.join(sysu_root, f"cam{cam}", person)))
      # 0001.jpg ... NNNN.jpg, contiguous.
      assert names == [f"{k:04d}.jpg" for k in range(1, len(names) + 1)]
      assert 1 <= len(names) <= 3
  assert on_disk == set(all_ids)


def test_sysu_plan_matches_the_real_structure():
  train, val, test, counts = sysu_layout.plan(40, seed=0, lo=4, hi=12)
  ids = sorted(train + val + test)
  assert (len(train), len(val), len(test)) == (24, 4, 12)
  assert max(ids) > 40, "person ids should have gaps, as in SYSU-MM01"
  assert not set(train) & set(test) and not set(val) & set(test)
  cams = {pid: {c for (p, c) in counts if p == pid} for pid in ids}
  for pid in train + val:
    assert cams[pid] & {1, 2, 4, 5} and cams[pid] & {3, 6}, pid
  for pid in test:
    assert cams[pid] & {3, 6} and cams[pid] & {1, 2, 4, 5}, pid
  indoor = [pid for pid in test if cams[pid] & {1, 2}]
  assert len(test) - 2 <= len(indoor) < len(test), "most (not all) test ids seen indoors"
  assert sum(len(c) < 6 for c in cams.values()) >= 10, "ids must be missing from some cameras"
  n = np.array(list(counts.values()))
  assert n.min() >= 4 and n.max() <= 12 and (n < 10).any() and (n >= 10).any()


def test_sysu_modes(sysu_root):
  for cam in range(1, 7):
    folder = os.path.join(sysu_root, f"cam{cam}")
    person = sorted(os.listdir(folder))[0]
    path = os.path.join(folder, person, "0001.jpg")
    with Image.open(path) as img:
      assert img.format == "JPEG" and img.size == (W, H)
      assert img.mode == ("L" if cam in (3, 6) else "RGB"), (cam, img.mode)
    assert load_image(path).shape == (H, W, 3)


def test_regdb_layout_is_exact(regdb_root):
  assert sorted(os.listdir(regdb_root)) == [".complete", "Thermal", "Visible", "idx"]
  assert marker.read_marker(regdb_root)["layout"] == "regdb"
  pattern = r"(male|female)_(front|back)_{m}_(\d{{5}})_{pid}\.bmp"
  for pid in range(1, 5):
    vis = sorted(os.listdir(os.path.join(regdb_root, "Visible", str(pid))))
    th = sorted(os.listdir(os.path.join(regdb_root, "Thermal", str(pid))))
    assert len(vis) == len(th) == 10
    for v, t in zip(vis, th):
      mv = re.fullmatch(pattern.format(m="v", pid=pid), v)
      mt = re.fullmatch(pattern.format(m="t", pid=pid), t)
      assert mv and mt, (v, t)
      assert mv.groups() == mt.groups(), "visible/thermal pairs share gender, view and frame"
    with Image.open(os.path.join(regdb_root, "Visible", str(pid), vis[0])) as img:
      assert (img.format, img.mode, img.size) == ("BMP", "RGB", (W, H))
    with Image.open(os.path.join(regdb_root, "Thermal", str(pid), th[0])) as img:
      assert (img.format, img.mode, img.size) == ("BMP", "L", (W, H))

  idx = os.path.join(regdb_root, "idx")
  assert sorted(os.listdir(idx)) == sorted(f"{s}_{m}_{t}.txt" for s in ("train", "test")
                                           for m in ("visible", "thermal") for t in range(1, 11))
  splits = set()
  for t in range(1, 11):
    ids = {}
    for s in ("train", "test"):
      for m, folder in (("visible", "Visible"), ("thermal", "Thermal")):
        with open(os.path.join(idx, f"{s}_{m}_{t}.txt")) as f:
          lines = [line.split() for line in f.read().splitlines()]
        for rel, label in lines:
          assert rel.startswith(folder + "/") and os.path.isfile(os.path.join(regdb_root, rel))
        pids = [int(rel.split("/")[1]) for rel, _ in lines]
        labels = [int(label) for _, label in lines]
        ids[s] = sorted(set(pids))
        if s == "train":   # relabelled 0..n-1 in id order
          assert labels == [ids[s].index(p) for p in pids]
        else:              # the person's 0-based index
          assert labels == [p - 1 for p in pids]
        assert len(lines) == 10 * len(ids[s])
    assert len(ids["train"]) == len(ids["test"]) == 2
    assert set(ids["train"]) | set(ids["test"]) == {1, 2, 3, 4}
    splits.add(tuple(ids["train"]))
  assert len(splits) > 1, "each trial should draw its own split"


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="layout"):
    synthetic.generate("market", str(tmp_path / "a"))
  with pytest.raises(ValueError, match="num_ids"):
    synthetic.generate("sysu", str(tmp_path / "b"), num_ids=3)
  (tmp_path / "c").mkdir()
  (tmp_path / "c" / "old.txt").write_text("x")
  with pytest.raises(FileExistsError, match="not empty and was not made by the synthetic"):
    synthetic.generate("sysu", str(tmp_path / "c"))
  assert os.listdir(tmp_path / "c") == ["old.txt"]
  (tmp_path / "f").write_text("x")
  with pytest.raises(FileExistsError, match="is a file"):
    synthetic.generate("sysu", str(tmp_path / "f"))


# ---------------------------------------------------------------------------- determinism

def _all_files(root):
  return sorted(os.path.relpath(os.path.join(d, n), root)
                for d, _, names in os.walk(root) for n in names)


@pytest.mark.parametrize("layout", ["sysu", "regdb"])
def test_deterministic_for_a_seed(tmp_path, layout):
  kw = dict(num_ids=5, images_per_cam=(1, 1))
  synthetic.generate(layout, str(tmp_path / "a"), seed=7, **kw)
  synthetic.generate(layout, str(tmp_path / "b"), seed=7, **kw)
  synthetic.generate(layout, str(tmp_path / "c"), seed=8, **kw)
  files = _all_files(tmp_path / "a")
  assert files == _all_files(tmp_path / "b") and len(files) > 10
  assert all(filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files)
  common = [f for f in files if os.path.exists(tmp_path / "c" / f) and f.endswith((".jpg", ".bmp"))]
  assert common and not any(filecmp.cmp(tmp_path / "a" / f, tmp_path / "c" / f, shallow=False)
                            for f in common)


def tree_digest(root):
  """The dataset's digest, without the generator's marker."""
  return digest(root, skip_hidden=True)


# Digests of datasets and sample sheets written by the generator as it was when the
# references were taken (numpy 2.4, scipy 1.17, Pillow 13). Any change to the generated
# bytes (a refactoring that reorders random draws, a changed default) fails here.
GOLDEN = {
    "sysu": "4c209deaab43f3e8eb22d78f4a8ca3014e617931f752180848c9dc9d4af50f2c",
    "regdb": "5f70bd21615c409b5005afcbf30eb1274115956baa05317693d01ba83179798c",
    "sheet_sysu": "66fca9d2fdcde0fa2bce376e15bda81f36b09bb15a6d3a63923e6b4f3f1d8eaa",
    "sheet_regdb": "82840bf6213c6cf42739cbc6f06cb517498278dbdf4f9328af44420d3d7f2a61",
}


def test_generated_bytes_match_the_reference(tmp_path):
  synthetic.generate("sysu", str(tmp_path / "sysu"), num_ids=8, seed=7, images_per_cam=(1, 3),
                     image_size=(96, 48))
  synthetic.generate("regdb", str(tmp_path / "regdb"), num_ids=4, seed=7, images_per_cam=(2, 2),
                     image_size=(64, 32))
  got = {layout: tree_digest(tmp_path / layout) for layout in ("sysu", "regdb")}
  for layout in ("sysu", "regdb"):
    sheet = tmp_path / f"sheet_{layout}.png"
    synthetic.sample_sheet(str(tmp_path / layout), layout, str(sheet), rows=3)
    got[f"sheet_{layout}"] = hashlib.sha256(sheet.read_bytes()).hexdigest()
  assert got == GOLDEN


def test_several_workers_write_the_same_bytes(tmp_path):
  """The parallel writer (SYSU-MM01-size datasets) gives the serial writer's files exactly."""
  synthetic.generate("sysu", str(tmp_path / "sysu"), num_ids=8, seed=7, images_per_cam=(1, 3),
                     image_size=(96, 48), workers=3)
  synthetic.generate("regdb", str(tmp_path / "regdb"), num_ids=4, seed=7, images_per_cam=(2, 2),
                     image_size=(64, 32), workers=2)
  assert tree_digest(tmp_path / "sysu") == GOLDEN["sysu"]
  assert tree_digest(tmp_path / "regdb") == GOLDEN["regdb"]


def test_sysu_split_sizes_can_be_given(tmp_path):
  root = tmp_path / "d"
  synthetic.generate("sysu", str(root), num_ids=12, seed=1, images_per_cam=(1, 1),
                     image_size=(64, 32), test_ids=4, val_ids=2)
  split = {s: read_ids(root / "exp" / f"{s}_id.txt") for s in ("train", "val", "test")}
  assert [len(split[s]) for s in ("train", "val", "test")] == [6, 2, 4]
  assert marker.read_marker(str(root))["test_ids"] == "4"
  with pytest.raises(ValueError, match="each split needs at least one"):
    synthetic.generate("sysu", str(tmp_path / "e"), num_ids=6, test_ids=3, val_ids=3)
  with pytest.raises(ValueError, match="RegDB splits"):
    synthetic.generate("regdb", str(tmp_path / "f"), num_ids=6, test_ids=3)
  with pytest.raises(ValueError, match="workers=0"):
    synthetic.generate("sysu", str(tmp_path / "g"), num_ids=6, workers=0)
  assert sorted(os.listdir(tmp_path)) == ["d"]        # refused: nothing written


# ---------------------------------------------------------------------------- a fair task
# These use the renderer directly, with camera models of the SYSU cameras.

@functools.lru_cache(maxsize=None)
def _scene(key):
  return synthetic.make_scene(key, 0, H, W)


def _shot(person, cam, key, views=("front", "back", "side"), probs=(0.4, 0.35, 0.25)):
  spec = sysu_layout.CAMERAS[cam]
  scene = _scene(spec.scene)
  rng = np.random.default_rng(key)
  nz = synthetic.sample_nuisance(rng, scene.shape, H, W, views, probs)
  canvas = synthetic.render_scene(person, scene, nz, H, W)
  img = (synthetic.to_infrared if spec.infrared else synthetic.to_visible)(canvas, spec, nz, rng)
  return img, nz


def _colour_hist(img):
  """Normalised 4x4x4 colour histogram of the central region (grey images: R = G = B)."""
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, axis=-1)
  q = img[24:112, 16:48].reshape(-1, 3) // 64
  h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(float)
  return np.sqrt(h / h.sum())


def test_colour_identifies_people_within_visible_but_not_across_modalities():
  n = 12
  people = [synthetic.sample_person(i + 1, np.random.default_rng([0, 1, i + 1])) for i in range(n)]
  vis = {i: [_colour_hist(_shot(p, c, [1, i, c, k])[0]) for c in (1, 2, 4, 5) for k in range(2)]
         for i, p in enumerate(people)}
  ir = {i: [_colour_hist(_shot(p, c, [1, i, c, k])[0]) for c in (3, 6) for k in range(2)]
        for i, p in enumerate(people)}

  def nearest(x, exclude=None):
    centroids = [np.mean([y for y in vis[j] if y is not exclude], axis=0) for j in range(n)]
    d = [np.sum((x - c) ** 2) for c in centroids]
    return int(np.argmin(d))

  acc_vis = np.mean([nearest(x, exclude=x) == i for i in range(n) for x in vis[i]])
  acc_cross = np.mean([nearest(x) == i for i in range(n) for x in ir[i]])
  # Chance is 1/12: colour is a strong visible cue and useless across modalities.
  assert acc_vis >= 0.45, acc_vis
  assert acc_cross <= 0.25 and acc_vis >= 2.5 * acc_cross, (acc_vis, acc_cross)


def test_infrared_is_not_a_grey_version_of_the_colours():
  lum, temp, pixel_corr = [], [], []
  for i in range(24):
    person = synthetic.sample_person(i + 1, np.random.default_rng([0, 1, i + 1]))
    scene = _scene("regdb")
    rng = np.random.default_rng([2, i])
    nz = dataclasses.replace(synthetic.sample_nuisance(rng, scene.shape, H, W), occlude=False)
    canvas = synthetic.render_scene(person, scene, nz, H, W)   # one shot, both modalities
    vis = synthetic.to_visible(canvas, regdb_layout.CAMERAS[1], nz, rng).astype(float)
    ir = synthetic.to_infrared(canvas, regdb_layout.CAMERAS[2], nz, rng).astype(float)
    y = vis @ np.array([0.299, 0.587, 0.114])
    pose = nz.pose
    top = int(pose.top + 0.3 * pose.height)
    rows, cols = slice(top, top + 12), slice(int(pose.cx) - 5, int(pose.cx) + 5)   # the chest
    lum.append(y[rows, cols].mean())
    temp.append(ir[rows, cols].mean())
    body = (slice(int(pose.top), int(pose.top + pose.height)),
            slice(int(pose.cx) - 8, int(pose.cx) + 8))
    pixel_corr.append(np.corrcoef(y[body].ravel(), ir[body].ravel())[0, 1])
  assert abs(np.corrcoef(lum, temp)[0, 1]) < 0.6
  assert np.mean(pixel_corr) < 0.5


def test_texture_period_survives_both_modalities():
  """A striped top: its period is measurable in the RGB and in both IR cameras."""
  errors = {1: [], 3: [], 6: []}
  for i in range(8):
    person = synthetic.sample_person(100 + i, np.random.default_rng([5, i]))
    period = 0.05 + 0.04 * i / 7
    rgb2 = (0.9, 0.9, 0.9) if palettes.luma(person.top.rgb) < 0.5 else (0.1, 0.1, 0.1)
    stripes = synthetic.Pattern("hstripes", period, 0.0, 0.3 * i, rgb2, 0.13 * (-1) ** i)
    person = dataclasses.replace(person, top=dataclasses.replace(person.top, pattern=stripes),
                                 backpack=None, bag=None, inner=None, scarf=None,
                                 hair_style="short", sleeves="long")
    for cam in errors:
      img, nz = _shot(person, cam, [7, i, cam], views=("front", "back"), probs=(0.5, 0.5))
      pose = nz.pose
      hs = pose.height
      y0 = int(pose.top + 2 * person.head * hs + 0.07 * hs)
      y1 = int(pose.top + hs * (1 - person.leg) - 0.02 * hs)
      region = img[y0:y1, int(pose.cx - 0.05 * hs):int(pose.cx + 0.05 * hs)].astype(float)
      profile = region.reshape(region.shape[0], region.shape[1], -1).mean(axis=1)
      profile -= profile.mean(axis=0)
      spectrum = np.fft.rfft(profile * np.hanning(len(profile))[:, None], n=256, axis=0)
      power = (np.abs(spectrum) ** 2).sum(axis=1)
      freqs = np.fft.rfftfreq(256)
      keep = freqs > 1 / 20
      estimate = 1 / freqs[keep][np.argmax(power[keep])]
      errors[cam].append(abs(estimate - period * hs) / (period * hs))
  for cam, err in errors.items():
    assert np.mean(np.array(err) < 0.15) >= 0.85, (cam, np.round(err, 2))


# ---------------------------------------------------------------------------- sample sheet

def test_sample_sheet(sysu_root, regdb_root, tmp_path):
  for layout, root in (("sysu", sysu_root), ("regdb", regdb_root)):
    path = tmp_path / f"{layout}.png"
    synthetic.sample_sheet(root, layout, str(path), rows=3)
    assert path.stat().st_size < 300_000
    with Image.open(path) as img:
      assert img.format == "PNG"
      assert img.size[0] >= 8 * W and img.size[1] >= 3 * H


def test_cli(tmp_path):
  out = tmp_path / "d"
  args = ["--layout=sysu", f"--out={out}", "--num_ids=5", "--images_per_cam", "1", "1",
          "--image_size", "64", "32"]
  cli.main(args)
  some = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".jpg")]
  assert some
  with Image.open(some[0]) as img:
    assert img.size == (32, 64)
  assert marker.read_marker(str(out))["num_ids"] == "5"   # the CLI marks its output as ours
  before = tree_digest(out)
  with pytest.raises(FileExistsError, match="already holds a synthetic dataset"):
    cli.main(args)
  assert tree_digest(out) == before


def test_cli_refuses_what_is_not_its_own(tmp_path):
  user = tmp_path / "user"
  user.mkdir()
  (user / "notes.txt").write_text("my notes")
  with pytest.raises(FileExistsError, match="not made by the synthetic generator"):
    cli.main(["--layout=regdb", f"--out={user}"])
  assert os.listdir(user) == ["notes.txt"] and (user / "notes.txt").read_text() == "my notes"
  sheet = tmp_path / "sheet.png"
  sheet.write_bytes(b"not ours")
  with pytest.raises(FileExistsError, match="exists"):   # refused before any work
    cli.main(["--layout=regdb", f"--out={tmp_path / 'new'}", f"--sample_sheet={sheet}"])
  assert sheet.read_bytes() == b"not ours" and not (tmp_path / "new").exists()
