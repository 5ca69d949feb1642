"""AGW's non-local block: identity at initialisation, the reference's formula, its placement."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax.models import non_local, resnet


def reference_block(x, p, eps=1e-5):
  """AGW's Non_local.forward in numpy (float64), train-mode BN: f = theta phi^T / N, y = f g."""
  b, h, w, c = x.shape
  conv = lambda name: (x.reshape(b, h * w, c) @ p[name]["kernel"].reshape(c, -1)
                       + p[name]["bias"])
  g, theta, phi = conv("g"), conv("theta"), conv("phi")
  f = theta @ np.swapaxes(phi, 1, 2) / (h * w)              # (b, N, N)
  y = f @ g                                                   # (b, N, inner)
  wy = y @ p["W"]["kernel"].reshape(-1, c) + p["W"]["bias"]   # (b, N, C)
  mean, var = wy.mean((0, 1)), wy.var((0, 1))
  bn = (wy - mean) / np.sqrt(var + eps) * p["W_bn"]["scale"] + p["W_bn"]["bias"]
  return x + bn.reshape(b, h, w, c)


@pytest.mark.parametrize("width, hw", [("reference", (4, 3)), ("half", (4, 3)), ("half", (2, 2))])
def test_block_computes_agw_formula(width, hw):
  """Both associations of f g (inner <= N and inner > N) give the reference's value."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, *hw, 16)).astype(np.float32)
  block = non_local.NonLocal(width)
  v = block.init(jax.random.key(0), jnp.asarray(x), train=False)
  params = jax.tree.map(lambda a: rng.normal(0, 0.5, a.shape).astype(np.float32), v["params"])
  assert params["theta"]["kernel"].shape == (1, 1, 16, 1 if width == "reference" else 8)
  out, _ = block.apply({"params": params, "batch_stats": v["batch_stats"]}, jnp.asarray(x),
                       train=True, mutable=["batch_stats"])
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  np.testing.assert_allclose(out, reference_block(x.astype(np.float64), p64), rtol=2e-4, atol=2e-4)


def test_fresh_block_is_the_identity_and_inits_like_torch():
  x = jax.random.normal(jax.random.key(1), (2, 6, 3, 256))
  block = non_local.NonLocal()
  v = block.init(jax.random.key(0), x, train=False)
  out, _ = block.apply(v, x, train=True, mutable=["batch_stats"])
  np.testing.assert_array_equal(out, x)                     # BN scale and shift start at 0
  k = np.asarray(v["params"]["theta"]["kernel"])            # U(-1/16, 1/16): fan-in 256
  assert np.abs(k).max() <= 1 / 16 and np.abs(k).max() > 0.8 / 16
  bias = np.asarray(v["params"]["W"]["bias"])               # W: fan-in 1, U(-1, 1)
  assert np.abs(bias).max() <= 1.0 and bias.std() > 0.4
  with pytest.raises(ValueError, match="non_local_width"):
    non_local.inner_width(64, "quarter")


def test_agw_positions_in_resnet50_and_other_depths():
  assert [resnet.non_local_blocks(50, layer) for layer in (1, 2, 3, 4)] == [
      (), (2, 3), (3, 4, 5), ()]
  assert resnet.non_local_blocks(18, 2) == (0, 1) and resnet.non_local_blocks(18, 3) == (0, 1)
