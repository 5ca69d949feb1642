"""A run's start: every check and decision before anything is written.

`plan_run` reads and checks the training and test sets and the config
against them (number of identities, devices, hosts), builds the model and
compares an existing checkpoint with it. Only when all of that passed does the
trainer write to the workdir, so a start that is refused leaves it as it was.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections
from absl import logging
from etils import epath

from vireid_jax import config_defaults
from vireid_jax.data import datasets, validation
from vireid_jax.data.records import TrainSet
from vireid_jax.data.validation import ValidationSet
from vireid_jax.evaluation import suites
from vireid_jax.models import vireid
from vireid_jax.training import checkpointing, parallel, setup
from vireid_jax.training import train_step as train_step_lib
from vireid_jax.training.run_record import RunRecord


@dataclasses.dataclass
class RunPlan:
  """What a start checked and decided before writing anything."""
  workdir: epath.Path                     # a local folder (absolute) or a URL (gs://...)
  train_set: TrainSet | None              # None for data.name=fake (random batches)
  num_classes: int
  steps_per_epoch: int
  total_steps: int
  suite: suites.Suite | None              # the test protocols; None without a test set
  test_set: object | None                 # the suite's test lists
  val_set: ValidationSet | None           # held-out training identities (evals with val)
  model: vireid.ViReIDNet
  abstract_state: train_step_lib.TrainState   # shapes, dtypes and shardings only
  start_step: int                         # 0, or the latest checkpoint's step
  record: RunRecord                       # the evaluation history so far


def plan_run(config: ml_collections.ConfigDict, workdir: epath.Path, mesh) -> RunPlan:
  """Every check, nothing written (but a synthetic dataset generated into its own folder)."""
  train_set, suite, test_set, val_set = None, None, None, None
  if config.data.name == "fake":
    num_classes = int(config.data.fake_num_classes)
  else:
    train_set = datasets.load_train_set(config.data, workdir)
    if "val" in config_defaults.evaluation_names(config):
      train_set, val_set = datasets.hold_out_validation(config, workdir, train_set)
      logging.info("validation: %s (trained without them)", validation.SUITE.describe(val_set))
    num_classes = train_set.num_classes
    suite, test_set = suites.load(config.data, workdir)
    datasets.check_test_images(config.data, suite.name, test_set)
    same_data = ("Every host must read the same dataset: give each one the same copy at "
                 "--config.data.root.")
    for value, what in ((num_classes, "the number of training identities"),
                        (len(train_set.visible), "the number of visible training images"),
                        (len(train_set.infrared), "the number of infrared training images")):
      parallel.agree_across_hosts(value, what, same_data)
  datasets.validate(config, num_classes=num_classes, num_devices=jax.device_count(),
                    num_hosts=jax.process_count())
  pretrained = str(config.model.pretrained)
  if pretrained not in ("", "none") and not os.path.isfile(os.path.expanduser(pretrained)):
    raise FileNotFoundError(
        f"model.pretrained={pretrained!r} does not exist. Give the torchvision ResNet "
        "checkpoint you downloaded (or its conversion: python -m vireid_jax.models.pretrained "
        "--in resnet50-0676ba61.pth --out resnet50.npz).")
  steps_per_epoch = setup.steps_per_epoch(config, train_set)
  model = setup.build_model(config, num_classes)
  abstract = setup.abstract_train_state(config, model, steps_per_epoch, mesh)
  start_step, record = 0, RunRecord()
  # Every host must take the same decisions (orbax's managers synchronise): agreed on, and
  # a barrier, so that no host writes before every host has looked.
  if parallel.agree_across_hosts((workdir / "checkpoints").is_dir(),
                                 "whether WORKDIR/checkpoints exists"):
    probe = checkpointing.Checkpointer(workdir, read_only=True)
    try:
      latest = probe.latest_step()
      if latest is not None:
        probe.check_compatible(abstract, "latest")
        start_step, record = latest, RunRecord.from_json(probe.record(latest))
    finally:
      probe.close()
  parallel.agree_across_hosts(start_step, "the step of the latest checkpoint")
  return RunPlan(workdir, train_set, num_classes, steps_per_epoch,
                 int(config.num_epochs) * steps_per_epoch, suite, test_set, val_set, model,
                 abstract, start_step, record)


def initial_state(config, plan: RunPlan, ckpt, mesh):
  """The restored latest checkpoint, or a freshly initialised (ImageNet-loaded) state."""
  if plan.start_step:
    state, _ = ckpt.restore(plan.abstract_state, "latest")
    return state
  variables = setup.init_variables(config, plan.model, mesh, jax.random.key(config.seed))
  tx = setup.build_optimizer(config, variables["params"], plan.steps_per_epoch)
  return setup.initial_train_state(config, variables, tx, mesh)
