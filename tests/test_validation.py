"""Validation on held-out training identities: the split, its protocol, its place in a run."""

import json
import os

import numpy as np
import pytest

from vireid_jax import config_defaults
from vireid_jax.data import datasets, synthetic, validation
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet
from vireid_jax.errors import ConfigError, DataError
from vireid_jax.evaluation import protocols
from vireid_jax.training import checkpointing, parallel, periodic_eval, run_record, startup
from vireid_jax.training import trainer

from runs import demo_config  # pylint: disable=wrong-import-order


def train_set_of(pids, per_id=2):
  """Records of identities `pids` (labels 0..C-1 in this order), cameras 1 (vis) and 3 (IR)."""
  vis, ir = [], []
  for label, pid in enumerate(pids):
    vis += [ImageRecord(f"v/{pid}_{i}.jpg", label, 1, VISIBLE) for i in range(per_id)]
    ir += [ImageRecord(f"i/{pid}_{i}.jpg", label, 3, INFRARED) for i in range(per_id)]
  return TrainSet(tuple(vis), tuple(ir), len(pids), tuple(pids))


def test_split_holds_the_identities_out_and_relabels_the_rest_in_order():
  train, val = validation.split(train_set_of([3, 5, 8, 9, 11]), [8, 3, 42])
  assert train.class_pids == (5, 9, 11) and train.num_classes == 3
  assert [(r.path, r.label) for r in train.visible] == [
      ("v/5_0.jpg", 0), ("v/5_1.jpg", 0), ("v/9_0.jpg", 1), ("v/9_1.jpg", 1),
      ("v/11_0.jpg", 2), ("v/11_1.jpg", 2)]
  assert val.ids == (3, 8)          # 42 is not a training identity
  assert [(r.path, r.label) for r in val.infrared] == [
      ("i/3_0.jpg", 3), ("i/3_1.jpg", 3), ("i/8_0.jpg", 8), ("i/8_1.jpg", 8)]
  assert {r.modality for r in val.visible} == {VISIBLE}


def test_split_refuses_nothing_to_validate_on_and_too_few_classes_left():
  with pytest.raises(ValueError, match="nothing to validate on"):
    validation.split(train_set_of([1, 2, 3]), [7])
  with pytest.raises(ValueError, match="leaves 1 of the 3"):
    validation.split(train_set_of([1, 2, 3]), [1, 2])


def test_drawn_ids_are_a_seeded_share():
  pids = list(range(100, 140))
  a = validation.drawn_ids(pids, 0.1, seed=0)
  assert len(a) == 4 and set(a) <= set(pids) and list(a) == sorted(a)
  assert validation.drawn_ids(pids[::-1], 0.1, seed=0) == a      # the order given is irrelevant
  assert validation.drawn_ids(pids, 0.1, seed=1) != a
  assert len(validation.drawn_ids(pids[:3], 0.01, seed=0)) == 1   # at least one


def test_the_validation_protocol_ranks_infrared_queries_among_visible_images():
  """Hand-made features: query i matches its own identity's visible image except one."""
  val = validation.ValidationSet(
      visible=tuple(ImageRecord(f"v{p}", p, 1, VISIBLE) for p in (1, 2, 3)),
      infrared=tuple(ImageRecord(f"i{p}", p, 3, INFRARED) for p in (1, 2, 3)), ids=(1, 2, 3))
  feats = {"v1": [1, 0, 0], "v2": [0, 1, 0], "v3": [0, 0, 1],
           "i1": [1, 0, 0], "i2": [0, 1, 0], "i3": [1, 0, 0.1]}   # i3 is nearest to v1

  def extract(paths, modality):
    del modality
    f = np.array([feats[p] for p in paths], np.float32)
    return f / np.linalg.norm(f, axis=1, keepdims=True)

  result = protocols.evaluate(validation.SUITE, val, extract, trials=1)["infrared_to_visible"]
  assert result["rank1"] == pytest.approx(200 / 3)
  assert result["mAP"] == pytest.approx(100 * (1 + 1 + 0.5) / 3)


def test_the_record_keeps_each_evaluation_and_reads_records_without_names():
  record = run_record.RunRecord()
  assert record.add("test", 2, 30.0, selects_best=False) is False
  assert record.add("val", 2, 50.0, selects_best=True) is True
  assert record.add("val", 4, 40.0, selects_best=True) is False
  assert record.done("test", 2) and not record.done("test", 4) and record.done("val", 4)
  again = run_record.RunRecord.from_json(json.loads(json.dumps(record.to_json())))
  assert again == record and again.best_step == 2
  old = run_record.RunRecord.from_json({"evaluations": {"2": 31.5}, "best_step": 2,
                                        "best_value": 31.5})
  assert old.history == {"test": {2: 31.5}} and old.best_step == 2


def config_with(**keys):
  """The demo's config with `keys` ("a.b" spelled a__b) set."""
  return demo_config({k.replace("__", "."): v for k, v in keys.items()})


def test_the_config_knows_every_evaluation_the_loop_can_build():
  """`evals` is checked against config_defaults.EVALUATIONS, before the training layer runs."""
  assert tuple(periodic_eval.EVALUATIONS) == config_defaults.EVALUATIONS


@pytest.mark.parametrize("keys, says", [
    ({"evals": "test,valid"}, "evals"),
    ({"evals": "test", "eval__select_best_on": "val"}, "eval.select_best_on"),
    ({"val__fraction": 1.0}, "val.fraction"),
    ({"evals": "test,val", "data__source": "tfds", "data__tfds_dir": "/x"}, "validation identities"),
])
def test_bad_validation_settings_are_refused_by_key(keys, says):
  with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
    datasets.validate(config_with(**keys))


@pytest.fixture(scope="module")
def sysu_with_val(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("val") / "sysu")
  synthetic.generate("sysu", root, num_ids=14, seed=0, image_size=(64, 32), test_ids=3,
                     val_ids=3, images_per_cam=(2, 3))
  return root


def test_sysu_holds_out_its_val_id_list(sysu_with_val):
  config = config_with(evals="test,val", data__name="sysu", data__root=sysu_with_val)
  full = datasets.load_train_set(config.data, "")
  train, val = datasets.hold_out_validation(config, "", full)
  with open(os.path.join(sysu_with_val, "exp", "val_id.txt")) as f:
    named = sorted(int(p) for p in f.read().replace("\n", ",").split(",") if p.strip())
  assert list(val.ids) == named and not set(named) & set(train.class_pids)
  assert train.num_classes == full.num_classes - 3
  assert len(train.visible) + len(val.visible) == len(full.visible)
  assert {r.camera for r in val.infrared} <= {3, 6}


def test_regdb_holds_out_a_seeded_share_and_says_when_nothing_is_left(tmp_path):
  root = str(tmp_path / "regdb")
  synthetic.generate("regdb", root, num_ids=10, seed=0, image_size=(64, 32))
  config = config_with(evals="test,val", data__name="regdb", data__root=root, val__fraction=0.4)
  full = datasets.load_train_set(config.data, "")
  train, val = datasets.hold_out_validation(config, "", full)
  assert val.ids == validation.drawn_ids(full.class_pids, 0.4, 0)
  assert train.num_classes == full.num_classes - len(val.ids)
  config.val.fraction = 0.99
  with pytest.raises(DataError, match="at least 2 must remain"):
    datasets.hold_out_validation(config, "", full)


def test_a_run_selects_its_best_checkpoint_on_the_held_out_identities(sysu_with_val, tmp_path):
  config = config_with(
      evals="test,val", eval__select_best_on="val", data__root=sysu_with_val,
      data__image_size=(64, 64), data__cache_decoded=False, model__depth=10,
      model__branch_head_dim=32,
      batch__identities=4, batch__instances=2, num_epochs=2, steps_per_epoch=2,
      optim__warmup_epochs=1, optim__decay_epochs=(1,), eval__every_epochs=1,
      val__every_epochs=1, eval__trials=1, eval__batch_size=16, eval__rank_list_images=0)
  workdir = tmp_path / "run"
  plan = startup.plan_run(config, workdir, parallel.make_mesh())
  assert plan.num_classes == 14 - 3 - 3 and len(plan.val_set.ids) == 3
  assert trainer.train_and_evaluate(config, str(workdir)) == 0
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  val = {r["step"]: r["val/infrared_to_visible/rank1"] for r in rows
         if "val/infrared_to_visible/rank1" in r}
  test = [r["step"] for r in rows if "eval/all_single/rank1" in r]
  assert sorted(val) == [2, 4] and test == [2, 4]
  assert all("val/time_s" not in r for r in rows) and any("time/val_s" in r for r in rows)
  ckpt = checkpointing.Checkpointer(workdir, read_only=True)
  try:
    assert ckpt.best_step() == max(sorted(val), key=lambda s: (val[s], -s))
  finally:
    ckpt.close()
  assert os.path.exists(workdir / "results.json")
