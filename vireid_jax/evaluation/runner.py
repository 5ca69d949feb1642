"""Evaluates a trained network on the test protocols of the configured dataset.

Glue between the model (an embedding function per modality), the feature
extractor and the protocol code; no TensorFlow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from vireid_jax.data import datasets
from vireid_jax.evaluation import features, protocols
from vireid_jax.models import vireid

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def make_embed_fn(model: vireid.ViReIDNet, variables, dtype_name: str = "float32"):
  """(images float32 NHWC normalised, modality) -> L2-normalised embeddings."""
  dtype = _DTYPES[dtype_name]
  eval_model = model.clone(dtype=dtype)

  def embed(images, modality: int):
    out = eval_model.apply(variables, images.astype(dtype), modality, train=False,
                           method=vireid.ViReIDNet.embed)
    return out.astype(jnp.float32)

  return embed


def make_test_extractor(config: ml_collections.ConfigDict, model, variables, *, mesh=None,
                        batch_size: int | None = None):
  """`extract(paths, modality) -> (N, D)` with the run's evaluation settings (`config.eval`).

  Shared by the evaluation and the user tools (rank lists, plots, feature export).
  """
  if mesh is None:
    mesh = jax.sharding.Mesh(jax.local_devices(), ("data",))
  variables = jax.device_put(variables, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  return features.make_extractor(
      make_embed_fn(model, variables, config.eval.dtype), tuple(config.data.image_size),
      int(batch_size or config.eval.batch_size), flip=bool(config.eval.flip), mesh=mesh)


def evaluate(config: ml_collections.ConfigDict, workdir: str, model, variables, *,
             trials: int, mesh=None, extract=None) -> tuple[str, dict]:
  """Returns (layout, {protocol: metrics}) for the dataset that `config.data` names.

  `extract`: an extractor from `make_test_extractor` to reuse (its compiled
  embedding); by default one is made from `model` and `variables`.
  """
  layout, test_set = datasets.load_test_set(config.data, workdir)
  if extract is None:
    extract = make_test_extractor(config, model, variables, mesh=mesh)
  if layout == "sysu":
    results = protocols.evaluate_sysu_protocols(
        test_set, extract, trials=trials, gallery_rule=config.eval.gallery_rule,
        rand_perm_cam=config.eval.rand_perm_cam or None, rerank=bool(config.eval.rerank),
        max_rank=int(config.eval.max_rank))
  else:
    results = protocols.evaluate_regdb_protocols(
        test_set, extract, rerank=bool(config.eval.rerank), max_rank=int(config.eval.max_rank))
  return layout, results
