"""The jitted train step: forward both modalities, all losses, one optimiser update.

No TensorFlow or CLU here, so the step runs (and is benchmarked) on machines
that have neither. Non-finite steps never reach the parameters: the update is
dropped on the device and counted in the state, and the host decides at its
next check whether to stop (default) or carry on (`optim.skip_nonfinite`).
This keeps the step free of host round trips.

float16 compute (`model.dtype=float16`, for GPUs without bfloat16) uses dynamic
loss scaling, as PyTorch's GradScaler: the loss is multiplied by
`TrainState.loss_scale` before differentiation and the gradients divided by
it; a step whose scaled gradients overflow is skipped and halves the scale (an
expected event, not a fault), and every `LOSS_SCALE_GROWTH_INTERVAL` good steps
double it. bfloat16 and float32 keep the scale at 1 and never touch it.
We keep this small rule rather than flax's `DynamicScale`: the step already
tests every loss term, the gradients and the update for NaN/Inf once (to name
the term that failed), and the loss-scale rule reuses that one test, where
`DynamicScale` would wrap the gradient computation and test the gradients again.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vireid_jax.data import channel_augment
from vireid_jax.losses import objective
from vireid_jax.models import inputs as model_inputs_lib
from vireid_jax.models import vireid

# Bit i of `TrainState.first_nonfinite_terms` is loss term i of `objective.TERMS`;
# bit GRADIENTS_BIT marks non-finite gradients, UPDATE_BIT finite gradients whose
# update overflowed the parameters (e.g. a learning rate far too large).
GRADIENTS_BIT = 30
UPDATE_BIT = 29

# Dynamic loss scaling for float16 (GradScaler's defaults). Below MIN_LOSS_SCALE a
# non-finite gradient is no longer taken for an overflow but reported as a fault.
LOSS_SCALE_INIT = 2.0 ** 16
LOSS_SCALE_GROWTH_INTERVAL = 2000
MIN_LOSS_SCALE = 1.0


def uses_loss_scaling(compute_dtype) -> bool:
  """float16 gradients underflow without a loss scale; bfloat16 and float32 do not."""
  return jnp.dtype(compute_dtype) == jnp.float16


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  nonfinite_count: jax.Array         # steps whose update was dropped
  first_nonfinite_step: jax.Array    # -1 when none
  first_nonfinite_terms: jax.Array   # bitmask over objective.TERMS (+ GRADIENTS_BIT, UPDATE_BIT)
  loss_scale: jax.Array              # float32; 1 unless float16 compute (module docstring)
  loss_scale_good_steps: jax.Array   # good steps since the scale last changed


def create_train_state(variables, tx: optax.GradientTransformation,
                       compute_dtype=jnp.bfloat16) -> TrainState:
  params = variables["params"]
  scale = LOSS_SCALE_INIT if uses_loss_scaling(compute_dtype) else 1.0
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      batch_stats=variables.get("batch_stats", {}),
      opt_state=tx.init(params),
      nonfinite_count=jnp.zeros((), jnp.int32),
      first_nonfinite_step=jnp.full((), -1, jnp.int32),
      first_nonfinite_terms=jnp.zeros((), jnp.int32),
      loss_scale=jnp.full((), scale, jnp.float32),
      loss_scale_good_steps=jnp.zeros((), jnp.int32))


def next_loss_scale(scale: jax.Array, good_steps: jax.Array,
                    overflow: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(scale, good steps) after a step: halve on overflow, double after a run of good steps."""
  good_steps = jnp.where(overflow, 0, good_steps + 1)
  grow = good_steps >= LOSS_SCALE_GROWTH_INTERVAL
  scale = jnp.where(overflow, jnp.maximum(scale / 2, MIN_LOSS_SCALE),
                    jnp.where(grow, scale * 2, scale))
  return scale, jnp.where(grow, 0, good_steps)


def normalize_images(images: jax.Array, dtype) -> jax.Array:
  """uint8 RGB (on device) -> ImageNet-normalised `dtype`. Float input passes through."""
  if images.dtype == jnp.uint8:
    return model_inputs_lib.normalize(images).astype(dtype)
  return images.astype(dtype)


def model_inputs(batch, compute_dtype, shards: int = 1):
  """(visible, infrared, labels) for the model from a batch of the input pipeline.

  Normalises the images; applies CAJ's per-image operations ("<view>_ops",
  `channel_augment.apply_ops`) to the normalised images; with CAJ's
  channel-exchanged view, its rows join the visible ones shard by shard
  (`vireid.merge_modalities`: no row crosses devices), labels likewise.
  Labels: the visible rows' then the infrared rows'.
  """
  def view(name):
    ops = batch.get(f"{name}_ops")
    if ops is None:
      return normalize_images(batch[name], compute_dtype)
    x = channel_augment.apply_ops(normalize_images(batch[name], jnp.float32), ops)
    return x.astype(compute_dtype)

  visible, infrared = view("visible"), view("infrared")
  visible_labels = batch["visible_labels"]
  if "visible_exchanged" in batch:
    visible = vireid.merge_modalities(visible, view("visible_exchanged"), shards)
    visible_labels = vireid.merge_modalities(visible_labels, visible_labels, shards)
  return visible, infrared, jnp.concatenate([visible_labels, batch["infrared_labels"]])


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def nonfinite_bits(terms: dict[str, jax.Array], grads, new_params=None) -> jax.Array:
  bits = jnp.zeros((), jnp.int32)
  names = objective.term_names()
  undeclared = sorted(set(terms) - set(names) - {"accuracy"})
  if undeclared or len(names) >= UPDATE_BIT:
    raise ValueError(f"Loss terms {undeclared} are not declared in objective.TERMS (or "
                     f"{len(names)} terms overflow the non-finite bitmask).")
  for i, name in enumerate(names):
    if name in terms:
      bits = bits | jnp.where(jnp.isfinite(terms[name]), 0, 1 << i)
  bits = bits | jnp.where(_all_finite(grads), 0, 1 << GRADIENTS_BIT)
  if new_params is not None:
    bits = bits | jnp.where(_all_finite(new_params), 0, 1 << UPDATE_BIT)
  return bits


def describe_nonfinite(bits: int) -> list[str]:
  names = [n for i, n in enumerate(objective.term_names()) if bits & (1 << i)]
  if bits & (1 << GRADIENTS_BIT):
    names.append("gradients")
  if bits & (1 << UPDATE_BIT):
    names.append("parameters after the update")
  return names


def make_train_step(model, tx: optax.GradientTransformation,
                    loss_cfg: ml_collections.ConfigDict,
                    compute_dtype=jnp.bfloat16,
                    lr_fn: Callable | None = None,
                    loss_sharding=None) -> Callable:
  """Returns `train_step(state, batch) -> (state, metrics)` (not yet jitted).

  `batch` holds "visible", "infrared" (uint8 or float NHWC) and
  "visible_labels", "infrared_labels" (int32); rows of one identity are
  contiguous and both modalities list identities in the same order. CAJ's
  augmentations add "visible_exchanged" and "<view>_ops" (`model_inputs`).

  `loss_sharding` (data-parallel runs: replicated over the mesh) is where the
  pooled features, logits and labels go before the losses. The triplet and
  distribution losses compare every row with every other, so left sharded
  XLA splits them into dozens of small all-gathers, permutes and all-to-alls
  (forward and backward); gathered once, the few KiB per row are reduced on
  every device redundantly and their backward pass needs no communication.
  """

  loss_scaling = uses_loss_scaling(compute_dtype)

  def train_step(state: TrainState, batch) -> tuple[TrainState, dict]:
    visible, infrared, labels = model_inputs(batch, compute_dtype,
                                             getattr(model, "batch_shards", 1))
    if loss_sharding is not None:
      labels = jax.lax.with_sharding_constraint(labels, loss_sharding)

    def loss_fn(params):
      outputs, mutated = model.apply(
          {"params": params, "batch_stats": state.batch_stats},
          visible, infrared, train=True, mutable=["batch_stats"])
      if loss_sharding is not None:
        outputs = jax.lax.with_sharding_constraint(outputs, loss_sharding)
      loss, terms = objective.total_loss(outputs, labels, loss_cfg,
                                         num_visible=visible.shape[0])
      scaled = loss * state.loss_scale if loss_scaling else loss
      return scaled, (terms, mutated["batch_stats"])

    (_, (terms, new_batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    overflow = jnp.zeros((), jnp.bool_)
    if loss_scaling:
      grads = jax.tree.map(lambda g: g / state.loss_scale.astype(g.dtype), grads)
      # Finite losses with non-finite scaled gradients: an fp16 overflow, skipped quietly
      # (until the scale is at its floor, where it becomes a fault like any other).
      overflow = (~_all_finite(grads) & jnp.isfinite(terms["total"])
                  & (state.loss_scale > MIN_LOSS_SCALE))
    updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)

    bits = jnp.where(overflow, 0, nonfinite_bits(terms, grads, new_params))
    ok = (bits == 0) & ~overflow
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
    first = (state.first_nonfinite_step < 0) & (bits != 0)
    scale, good_steps = state.loss_scale, state.loss_scale_good_steps
    if loss_scaling:
      scale, good_steps = next_loss_scale(scale, good_steps, overflow)
    new_state = TrainState(
        step=state.step + 1,
        params=keep(new_params, state.params),
        batch_stats=keep(new_batch_stats, state.batch_stats),
        opt_state=keep(new_opt_state, state.opt_state),
        nonfinite_count=state.nonfinite_count + (bits != 0).astype(jnp.int32),
        first_nonfinite_step=jnp.where(first, state.step, state.first_nonfinite_step),
        first_nonfinite_terms=jnp.where(first, bits, state.first_nonfinite_terms),
        loss_scale=scale, loss_scale_good_steps=good_steps)

    metrics = {f"loss/{k}": v for k, v in terms.items() if k != "accuracy"}
    if "accuracy" in terms:
      metrics["train/accuracy"] = terms["accuracy"]
    metrics["train/grad_norm"] = jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32)))
                                              for g in jax.tree.leaves(grads)))
    metrics["train/nonfinite"] = (bits != 0).astype(jnp.float32)
    if loss_scaling:
      metrics["train/loss_scale"] = state.loss_scale
      metrics["train/fp16_overflow"] = overflow.astype(jnp.float32)
    if lr_fn is not None:
      metrics.update({f"train/{k}": v for k, v in lr_fn(state.step).items()})
    return new_state, metrics

  return train_step


def tree_param_count(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
