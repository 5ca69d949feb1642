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


def test_groups_follow_pytorch_sgd_nesterov_with_weight_decay():
  """Two steps of our optimiser equal PyTorch's SGD update, written out by hand."""
  c = config_defaults.base_config().optim
  c.warmup_epochs = 0
  c.decay_epochs = ()
  params = {"backbone": jnp.array([1.0, -2.0]), "head": jnp.array([0.5])}
  labels = {"backbone": "pretrained", "head": "new"}
  tx = optimizer.make_optimizer(c, labels, steps_per_epoch=10)
  state = tx.init(params)
  grads = [{"backbone": jnp.array([0.3, 0.1]), "head": jnp.array([-0.2])},
           {"backbone": jnp.array([-0.1, 0.4]), "head": jnp.array([0.7])}]
  p = jax.tree.map(np.asarray, params)
  buf = jax.tree.map(np.zeros_like, p)
  lr = {"backbone": c.lr_pretrained, "head": c.lr_new}
  for g in grads:
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    for k in p:   # torch.optim.SGD(momentum=0.9, nesterov=True, weight_decay=5e-4)
      d = np.asarray(g[k]) + c.weight_decay * p[k]
      buf[k] = c.momentum * buf[k] + d
      p[k] = p[k] - lr[k] * (d + c.momentum * buf[k])
  for k in p:
    np.testing.assert_allclose(np.asarray(params[k]), p[k], rtol=1e-6)
