"""`data.name=synthetic` never deletes or overwrites a folder that is not the generator's own."""

import os
import stat

import pytest

from vireid_jax import config_defaults
from vireid_jax.data import datasets, sysu
from vireid_jax.data.synthetic import cli, marker


def synthetic_config(root, layout="sysu", num_ids=5):
  c = config_defaults.base_config()
  c.data.name, c.data.root = "synthetic", str(root)
  c.data.synthetic_layout, c.data.synthetic_num_ids = layout, num_ids
  return c.data


def snapshot(folder):
  return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
          for d, _, names in os.walk(folder) for n in names}


def test_a_users_folder_survives(tmp_path):
  user = tmp_path / "dataset"
  (user / "cam1").mkdir(parents=True)
  (user / "notes.txt").write_text("three months of annotations")
  (user / "cam1" / "0001.jpg").write_bytes(b"\xff\xd8 a photo")
  before = snapshot(user)
  with pytest.raises(FileExistsError, match=r"(?s)not made by the synthetic generator.*"
                                            r"--config\.data\.name=sysu"):
    datasets.load_train_set(synthetic_config(user), str(tmp_path / "workdir"))
  assert snapshot(user) == before
  assert sorted(os.listdir(tmp_path)) == ["dataset"]   # no temporary folder left behind


def test_the_clis_output_is_used_as_it_is(tmp_path):
  out = tmp_path / "generated"
  cli.main(["--layout=sysu", f"--out={out}", "--num_ids=6", "--images_per_cam", "1", "2"])
  before = snapshot(out)
  # The config asks for 5 ids: the existing dataset (6 ids) is reused, not regenerated.
  train = datasets.load_train_set(synthetic_config(out, num_ids=5), str(tmp_path / "w"))
  assert snapshot(out) == before
  assert train == sysu.load_train(str(out))


def test_new_or_empty_folder_is_generated_and_then_reused(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  for root in (empty, tmp_path / "new" / "deeper"):
    datasets.ensure_synthetic(str(root), "regdb", num_ids=4)
    assert marker.read_marker(str(root))["layout"] == "regdb"
    before = snapshot(root)
    datasets.ensure_synthetic(str(root), "regdb", num_ids=4)
    assert snapshot(root) == before
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".synthetic_tmp_")]


def test_another_layout_is_refused(tmp_path):
  root = tmp_path / "regdb"
  datasets.ensure_synthetic(str(root), "regdb", num_ids=4)
  assert stat.S_IMODE(os.stat(root).st_mode) == 0o755     # readable by others, like its files
  before = snapshot(root)
  with pytest.raises(ValueError, match="synthetic_layout=regdb"):
    datasets.load_train_set(synthetic_config(root, layout="sysu"), str(tmp_path))
  assert snapshot(root) == before


def test_a_file_as_root_is_refused(tmp_path):
  path = tmp_path / "data.txt"
  path.write_text("x")
  with pytest.raises(FileExistsError, match="not made by the synthetic generator"):
    datasets.ensure_synthetic(str(path), "sysu", num_ids=5)
  assert path.read_text() == "x"


def test_files_appearing_during_generation_are_kept_and_nothing_is_left_behind(tmp_path,
                                                                              monkeypatch):
  root = tmp_path / "root"
  generate = datasets.synthetic.generate

  def generate_while_someone_writes(layout, out, **kw):
    generate(layout, out, **kw)
    root.mkdir()
    (root / "theirs.txt").write_text("x")

  monkeypatch.setattr(datasets.synthetic, "generate", generate_while_someone_writes)
  with pytest.raises(FileExistsError, match="not made by the synthetic generator"):
    datasets.ensure_synthetic(str(root), "regdb", num_ids=4)
  assert os.listdir(root) == ["theirs.txt"] and sorted(os.listdir(tmp_path)) == ["root"]

  def fail(*args, **kw):
    raise KeyboardInterrupt

  monkeypatch.setattr(datasets.synthetic, "generate", fail)
  with pytest.raises(KeyboardInterrupt):
    datasets.ensure_synthetic(str(tmp_path / "new"), "regdb", num_ids=4)
  assert sorted(os.listdir(tmp_path)) == ["root"]   # the temporary folder is gone
