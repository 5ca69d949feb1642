"""The AGW-family optimiser: SGD + Nesterov, two learning-rate groups, warm-up + steps.

`optim.name=adam` swaps SGD for Adam with L2 weight decay added to the gradient
(torch.optim.Adam's `weight_decay`, as in fast-reid and many VI-ReID codebases),
same groups and schedule; it learns faster from scratch (the CPU demo).

PyTorch's SGD(momentum, nesterov, weight_decay) adds `wd * p` to the gradient,
then applies momentum, then the learning rate; optax's
`add_decayed_weights -> trace(nesterov) -> scale(-lr)` chain is the same update.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax


def lr_factor_schedule(optim_cfg: ml_collections.ConfigDict,
                       steps_per_epoch: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """Multiplier of the base learning rate at a step, as in the AGW baseline.

  Warm-up is per epoch (epoch e < W uses (e + 1) / W), then x`decay_factor` at
  each epoch of `decay_epochs`. Epoch = step // steps_per_epoch, so a resumed
  run follows the same schedule.
  """
  warmup = int(optim_cfg.warmup_epochs)
  boundaries = tuple(int(e) for e in optim_cfg.decay_epochs)
  factor = float(optim_cfg.decay_factor)

  def schedule(step):
    epoch = jnp.asarray(step, jnp.int32) // steps_per_epoch
    out = jnp.ones((), jnp.float32)
    if warmup > 0:
      out = jnp.where(epoch < warmup, (epoch + 1).astype(jnp.float32) / warmup, out)
    for b in boundaries:
      out = jnp.where(epoch >= b, out * factor, out)
    return out

  return schedule


def make_optimizer(optim_cfg: ml_collections.ConfigDict, param_labels,
                   steps_per_epoch: int) -> optax.GradientTransformation:
  """Builds the optimiser; `param_labels` is a pytree of "pretrained" | "new"."""
  factor = lr_factor_schedule(optim_cfg, steps_per_epoch)

  def group(base_lr: float) -> optax.GradientTransformation:
    parts = []
    if optim_cfg.weight_decay:
      parts.append(optax.add_decayed_weights(float(optim_cfg.weight_decay)))
    lr = lambda step: base_lr * factor(step)
    if optim_cfg.name == "adam":
      parts.append(optax.adam(lr))
    else:
      parts.append(optax.sgd(lr, momentum=float(optim_cfg.momentum) or None,
                             nesterov=bool(optim_cfg.nesterov)))
    return optax.chain(*parts)

  tx = optax.multi_transform(
      {"pretrained": group(float(optim_cfg.lr_pretrained)),
       "new": group(float(optim_cfg.lr_new))},
      param_labels)
  if optim_cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(float(optim_cfg.grad_clip_norm)), tx)
  return tx


def learning_rates(optim_cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                   step) -> dict[str, jax.Array]:
  """Both groups' learning rates at `step`, for the summaries."""
  f = lr_factor_schedule(optim_cfg, steps_per_epoch)(step)
  return {"lr_pretrained": f * optim_cfg.lr_pretrained, "lr_new": f * optim_cfg.lr_new}
