"""The deployed feature extractor: uint8 images and a modality in, the evaluation's features out.

`serving_function` is one pure function of (weights, images, modality) that
computes what the evaluation computes for a run (`features.embed_pixels`:
ImageNet normalisation, the embedding in the run's precision, flip averaging
when `eval.flip`, L2 normalisation), with the modality an int32 input rather
than a Python constant, so that one exported file (`tools.export`) serves
both modalities. The modality picks the stem and branch weights
(`vireid.select_modality`): no control flow, which every ONNX runtime runs.
A modality other than 0 or 1 gives NaN features, never plausible wrong ones.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.evaluation import evaluators, features
from vireid_jax.models import vireid

# (weights, uint8 (B, H, W, 3) images, int32 () modality) -> float32 (B, D) features.
ServingFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
BATCH = "batch"          # the symbolic batch dimension's name in the exported files


def serving_function(model: vireid.ViReIDNet, dtype_name: str = "float32",
                     flip: bool = False) -> ServingFn:
  """The evaluation's features of uint8 images of either modality (see the module docstring)."""
  embed = evaluators.make_embed_fn(model, dtype_name)

  def serve(weights, images, modality):
    chosen = vireid.select_modality(weights, modality)
    feats = features.embed_pixels(embed, chosen, images, VISIBLE, flip)
    known = (modality == VISIBLE) | (modality == INFRARED)
    return jnp.where(known, feats, jnp.nan)

  return serve


def input_specs(image_size) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
  """(images uint8 (batch, H, W, 3) with a symbolic batch, modality int32 scalar)."""
  batch, = jax.export.symbolic_shape(BATCH)
  h, w = (int(s) for s in image_size)
  return (jax.ShapeDtypeStruct((batch, h, w, 3), jnp.uint8),
          jax.ShapeDtypeStruct((), jnp.int32))
