"""The learning-rate schedule and parameter groups give the expected learning rates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vireid_jax import config_defaults
from vireid_jax.training import optimizer


def test_schedule_matches_agw_per_epoch_values():
  c = config_defaults.base_config().optim   # warm-up 10, x0.1 at 20 and 50
  spe = 7
  f = optimizer.lr_factor_schedule(c, spe)
  expected = {0: 0.1, 1: 0.2, 9: 1.0, 10: 1.0, 19: 1.0, 20: 0.1, 49: 0.1, 50: 0.01, 80: 0.01}
  for epoch, factor in expected.items():
    for step in (epoch * spe, epoch * spe + spe - 1):
      np.testing.assert_allclose(float(f(step)), factor, rtol=1e-6)
  lrs = optimizer.learning_rates(c, spe, 20 * spe)
  np.testing.assert_allclose(float(lrs["lr_new"]), 0.01, rtol=1e-6)
  np.testing.assert_allclose(float(lrs["lr_pretrained"]), 0.001, rtol=1e-6)


PARAMS = {"backbone": np.array([1.0, -2.0]), "head": np.array([0.5])}
LABELS = {"backbone": "pretrained", "head": "new"}
GRADS = [{"backbone": np.array([0.3, 0.1]), "head": np.array([-0.2])},
         {"backbone": np.array([-0.1, 0.4]), "head": np.array([0.7])}]


def _two_steps(optim_cfg) -> dict:
  """Parameters after two updates of our optimiser with GRADS (no schedule)."""
  tx = optimizer.make_optimizer(optim_cfg, LABELS, steps_per_epoch=10)
  params = jax.tree.map(jnp.asarray, PARAMS)
  state = tx.init(params)
  for g in GRADS:
    updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
    params = optax.apply_updates(params, updates)
  return jax.tree.map(np.asarray, params)


def test_groups_follow_pytorch_sgd_nesterov_with_weight_decay():
  """Two steps of our optimiser equal PyTorch's SGD update, written out by hand."""
  c = config_defaults.base_config().optim
  c.warmup_epochs, c.decay_epochs = 0, ()
  ours = _two_steps(c)
  p = dict(PARAMS)
  buf = jax.tree.map(np.zeros_like, p)
  lr = {"backbone": c.lr_pretrained, "head": c.lr_new}
  for g in GRADS:
    for k in p:   # torch.optim.SGD(momentum=0.9, nesterov=True, weight_decay=5e-4)
      d = g[k] + c.weight_decay * p[k]
      buf[k] = c.momentum * buf[k] + d
      p[k] = p[k] - lr[k] * (d + c.momentum * buf[k])
  for k in p:
    np.testing.assert_allclose(ours[k], p[k], rtol=1e-6)


def test_adam_follows_pytorch_adam_with_l2_weight_decay():
  """optim.name=adam: two steps equal torch.optim.Adam(weight_decay=wd), written out by hand."""
  c = config_defaults.base_config().optim
  c.name, c.warmup_epochs, c.decay_epochs = "adam", 0, ()
  c.lr_pretrained, c.lr_new = 1e-3, 3e-3
  ours = _two_steps(c)
  p = dict(PARAMS)
  m, v = jax.tree.map(np.zeros_like, p), jax.tree.map(np.zeros_like, p)
  lr = {"backbone": c.lr_pretrained, "head": c.lr_new}
  b1, b2, eps = 0.9, 0.999, 1e-8
  for t, g in enumerate(GRADS, start=1):
    for k in p:
      d = g[k] + c.weight_decay * p[k]
      m[k] = b1 * m[k] + (1 - b1) * d
      v[k] = b2 * v[k] + (1 - b2) * d * d
      p[k] = p[k] - lr[k] * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
  for k in p:
    np.testing.assert_allclose(ours[k], p[k], rtol=1e-5)
