"""Building blocks of a run, from a config: model, train state, jitted step, restores.

The training loop (`trainer.py`), the evaluation of a finished run, the user
tools and the benchmarks all build their pieces here, so a checkpoint written
by one is read by the others with the same structure.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import jax
import numpy as np
from absl import logging

from vireid_jax.data import fake, sampler
from vireid_jax.data.records import TrainSet
from vireid_jax.models import pretrained, vireid
from vireid_jax.training import checkpointing, optimizer, parallel, prefetch
from vireid_jax.training import train_step as train_step_lib


# Host-local numpy batches for steps start_step, start_step + 1, ...
BatchSource = Callable[[int], Iterator[dict]]


def compute_dtype(name: str):
  return vireid.DTYPES[name]


def build_model(config, num_classes: int) -> vireid.ViReIDNet:
  return vireid.ViReIDNet.from_config(config.model, num_classes,
                                      batch_shards=jax.device_count())


def init_variables(config, model, mesh, rng) -> dict:
  """Initialised (and optionally ImageNet-loaded) variables, replicated on `mesh`."""
  rep = parallel.replicated(mesh)
  h, w = config.data.image_size
  variables = jax.jit(
      lambda r: vireid.init_variables(model, r, (h, w), batch=2),
      out_shardings=rep)(rng)
  if config.model.pretrained and config.model.pretrained != "none":
    converted = pretrained.load_resnet_weights(config.model.pretrained, int(config.model.depth))
    host = jax.tree.map(np.asarray, variables)
    host = vireid.load_pretrained(host, converted, model)
    variables = jax.jit(lambda t: t, out_shardings=rep)(host)
    logging.info("ImageNet weights loaded into every ResNet copy from %s", config.model.pretrained)
  return variables


def build_optimizer(config, params, steps_per_epoch: int):
  labels = vireid.param_groups(params)
  return optimizer.make_optimizer(config.optim, labels, steps_per_epoch)


def steps_per_epoch(config, train_set: TrainSet | None) -> int:
  """`config.steps_per_epoch`, or the sampler's epoch length for the training set."""
  if config.steps_per_epoch:
    return int(config.steps_per_epoch)
  if train_set is None:
    raise ValueError("steps_per_epoch must be set (> 0) without a training set (data.name=fake).")
  return sampler.steps_per_epoch(train_set, int(config.batch.identities),
                                 int(config.batch.instances))


def initial_train_state(config, variables, tx, mesh) -> train_step_lib.TrainState:
  """The train state of `variables`, replicated over the mesh (loss scale set by model.dtype)."""
  dtype = compute_dtype(config.model.dtype)
  return jax.jit(lambda v: train_step_lib.create_train_state(v, tx, dtype),
                 out_shardings=parallel.replicated(mesh))(variables)


def abstract_train_state(config, model, steps_per_epoch: int, mesh):
  """Shapes, dtypes and shardings of the train state: what a restore needs, nothing computed."""
  size = tuple(config.data.image_size)

  def make_state(r):
    v = vireid.init_variables(model, r, size, batch=2)
    return train_step_lib.create_train_state(
        v, build_optimizer(config, v["params"], steps_per_epoch),
        compute_dtype(config.model.dtype))

  abstract = jax.eval_shape(make_state, jax.random.key(0))
  rep = parallel.replicated(mesh)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep), abstract)


def make_jitted_step(model, tx, config, mesh, steps_per_epoch: int):
  rep, data = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  step_fn = train_step_lib.make_train_step(
      model, tx, config.loss, compute_dtype(config.model.dtype),
      lr_fn=functools.partial(optimizer.learning_rates, config.optim, steps_per_epoch),
      loss_sharding=rep if mesh.size > 1 else None)
  return jax.jit(step_fn, in_shardings=(rep, data), out_shardings=(rep, rep),
                 donate_argnums=(0,))


def local_variables(state) -> dict:
  """Parameters and BN statistics as host numpy arrays (works on multi-host)."""
  return jax.tree.map(np.asarray, {"params": state.params, "batch_stats": state.batch_stats})


def restore_for_evaluation(config, workdir, model, steps_per_epoch: int, which,
                           mesh) -> tuple[Any, int, str]:
  """Restores `which` (best | latest | a step) of `workdir`: (state, step, what was used).

  "best" falls back to the latest checkpoint, with a warning, when the run
  never evaluated.
  """
  abstract = abstract_train_state(config, model, steps_per_epoch, mesh)
  ckpt = checkpointing.Checkpointer(workdir, keep=int(config.keep_checkpoints), read_only=True)
  try:
    which = str(which)
    if which == "best" and ckpt.best_step() is None:
      if ckpt.latest_step() is not None:   # else restoring "latest" says there is none
        logging.warning("No best checkpoint (no evaluation during training): using the latest.")
      which = "latest"
    state, step = ckpt.restore(abstract, which)
  finally:
    ckpt.close()
  return state, step, which


# ----------------------------------------------------------------------------
# Batch sources: what the training loop reads. `fake` needs no files and no
# TensorFlow; the dataset source is the tf.data pipeline.

def fake_batches(config, num_classes: int) -> BatchSource:
  """One random host batch with the real structure, repeated (data.name=fake)."""
  local = fake.fake_batch(config.seed, config.batch.identities, config.batch.instances,
                          tuple(config.data.image_size), num_classes,
                          host_id=jax.process_index(), num_hosts=jax.process_count())

  def source(start_step: int):
    del start_step
    while True:
      yield local
  return source


def dataset_batches(config, train_set: TrainSet) -> BatchSource:
  """The tf.data pipeline's host batches: step s is a pure function of (seed, s)."""
  # TensorFlow stays out of the model, the step and their benchmarks: imported here.
  from vireid_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  def source(start_step: int):
    return pipeline.make_train_iterator(
        train_set, config.data, config.batch, seed=config.seed, start_step=start_step,
        host_id=jax.process_index(), num_hosts=jax.process_count())
  return source


def global_batches(source: BatchSource, start_step: int, mesh, ahead: int = 0) -> Iterator[dict]:
  """Device-resident global batches from `start_step` on, in order.

  ahead = 0: made on the caller's thread, one ahead of the step; ahead > 0: up to
  `ahead` made ahead on a background thread (prefetch.py). Close the iterator when done.
  """
  if ahead > 0:
    return prefetch.Prefetcher(
        (parallel.to_global_batch(local, mesh) for local in source(start_step)), ahead)
  return _one_ahead(source, start_step, mesh)


def _one_ahead(source: BatchSource, start_step: int, mesh) -> Iterator[dict]:
  pending = None
  for local in source(start_step):
    nxt = parallel.to_global_batch(local, mesh)
    if pending is not None:
      yield pending
    pending = nxt
  if pending is not None:
    yield pending

