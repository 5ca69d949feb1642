"""The main job end to end on a tiny synthetic dataset: resume equals an uninterrupted run."""

import gc
import json
import os
import time

import jax
import numpy as np
import pytest

from vireid_jax import config_defaults
from vireid_jax.data import datasets
from vireid_jax.data import fake
from vireid_jax.training import checkpointing, parallel, reporting, run_info, setup, trainer
from vireid_jax.training import train_step as train_step_lib


@pytest.fixture(scope="module")
def sysu_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("data") / "sysu")
  datasets.ensure_synthetic(root, "sysu", num_ids=12, seed=0)
  return root


def tiny_config(root, num_epochs):
  c = config_defaults.synthetic_demo(config_defaults.base_config())
  c.data.root = root
  c.data.image_size = (64, 64)
  c.data.cache_decoded = False
  c.model.depth = 10
  c.model.branch_head_dim = 32
  c.batch.identities = 4
  c.batch.instances = 2
  c.num_epochs = num_epochs
  c.steps_per_epoch = 2
  c.log_every_steps = 1
  c.optim.warmup_epochs = 1
  c.optim.decay_epochs = (1,)     # the schedule changes at the resume point
  c.eval.every_epochs = 0
  c.eval.trials = 1
  c.eval.batch_size = 16
  return c


def losses(workdir):
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if "loss/total" in row:
        out[row["step"]] = (row["loss/total"], row["train/lr_new"])
  return out


def final_params(workdir, config, num_classes):
  model = setup.build_model(config, num_classes)
  mesh = parallel.make_mesh()
  v = setup.init_variables(config, model, mesh, jax.random.key(1))
  tx = setup.build_optimizer(config, v["params"], config.steps_per_epoch)
  state = train_step_lib.create_train_state(v, tx)
  ckpt = checkpointing.Checkpointer(workdir)
  state, step = ckpt.restore(state, "latest")
  ckpt.close()
  return step, jax.tree.map(np.asarray, state.params)


def test_resume_gives_the_same_batches_and_parameters(sysu_root, tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  assert trainer.train_and_evaluate(tiny_config(sysu_root, 2), straight) == 0
  with open(os.path.join(straight, "results.json")) as f:
    saved = json.load(f)
  assert {"all_single", "all_multi", "indoor_single", "indoor_multi"} <= set(saved)
  assert saved["dataset"] == "synthetic_sysu"
  assert saved["all_single"]["trials"] == 1 and "mINP" in saved["all_single"]["std"]

  trainer.train_and_evaluate(tiny_config(sysu_root, 1), resumed)   # stops after step 2
  assert sorted(losses(resumed)) == [1, 2]
  trainer.train_and_evaluate(tiny_config(sysu_root, 2), resumed)   # resumes at step 2
  a, b = losses(straight), losses(resumed)
  assert sorted(a) == sorted(b) == [1, 2, 3, 4]
  for s in a:   # same data stream position and learning-rate schedule after the resume
    np.testing.assert_allclose(a[s], b[s], rtol=1e-5)
  base_lr = tiny_config(sysu_root, 2).optim.lr_new
  assert a[3][1] == pytest.approx(0.1 * base_lr)   # decayed x0.1 at epoch 1

  c = tiny_config(sysu_root, 2)
  step_a, pa = final_params(straight, c, 8)
  step_b, pb = final_params(resumed, c, 8)
  assert step_a == step_b == 4
  for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)

  # Evaluation mode restores the checkpoint and reproduces the final report, in its own file.
  c = config_defaults.base_config()
  c.mode, c.eval.checkpoint = "eval", "latest"
  assert reporting.evaluate_run(c, straight, ["mode", "eval.checkpoint"]) == 0
  with open(os.path.join(straight, "results_latest.json")) as f:
    again = json.load(f)
  assert again["all_single"]["rank1"] == pytest.approx(saved["all_single"]["rank1"])
  assert again["settings"]["checkpoint"] == "latest" and again["settings"]["step"] == 4


def test_eval_of_a_folder_that_is_not_a_run_says_so(sysu_root, tmp_path):
  c = tiny_config(sysu_root, 1)
  c.mode = "eval"
  with pytest.raises(run_info.NotAWorkdirError, match="not a training workdir"):
    reporting.evaluate_run(c, str(tmp_path / "empty"), ["mode"])


def test_the_loop_reads_the_batch_source_it_is_given_from_the_resume_step(tmp_path):
  """The input seam: any function of the start step that yields host batches.

  The source is slow (1 s a batch, more than a step takes even on a loaded CPU): the
  summaries' input wait shows it. The loop runs
  with its start-up objects frozen out of the garbage collector, and thaws them at the end.
  """
  c = tiny_config("", 1)
  c.data.name, c.data.fake_num_classes, c.num_epochs = "fake", 10, 2
  c.data.device_prefetch = 0     # the source is read by the loop's own thread, one ahead
  starts, frozen = [], []

  def source(start_step):
    starts.append(start_step)
    rng = np.random.default_rng(start_step)
    while True:
      frozen.append(gc.get_freeze_count())
      time.sleep(1.0)
      yield fake.fake_batch(rng, 4, 2, c.data.image_size, 10)

  workdir = str(tmp_path / "run")
  c.num_epochs = 1
  assert trainer.train_and_evaluate(c, workdir, batch_source=source) == 0
  # The first two batches are drawn before the first step (one ahead); then frozen.
  assert frozen[:2] == [0, 0] and min(frozen[2:]) > 0, frozen
  assert gc.get_freeze_count() == 0
  c.num_epochs = 2
  assert trainer.train_and_evaluate(c, workdir, batch_source=source) == 0
  assert starts == [0, 2]
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3, 4]
  waits = [r["train/input_wait"] for r in rows if "train/input_wait" in r]
  # Steps 2 and 4 (steps 1 and 3 compile): about 1 s waited in an interval of 1 s plus at
  # most a step, which overlaps the wait; a fast source gives about 0.
  assert len(waits) == 2 and min(waits) > 0.4, waits
  assert not os.path.exists(os.path.join(workdir, "results.json"))   # no test set: no report
