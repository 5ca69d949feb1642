"""ResNet backbones and small layers: shapes, parameter counts, dtypes, BatchNorm and GeM maths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax.models import layers, resnet


def _abstract_init(model, shape):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def random_variables(model, shape, seed=0, **kwargs):
  """Variables of `model` with random values, without running (and compiling) its init.

  Kernels ~ He-normal (fan-in), BN scale ~ U(0.5, 1.5), biases and running
  means ~ N(0, 0.1^2), running variances ~ U(0.5, 1.5): non-trivial, but
  activations stay O(1) through a deep network.
  """
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), **kwargs))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = getattr(path[-1], "key", "")
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.normal(0, np.sqrt(2.0 / fan_in), leaf.shape).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    return rng.normal(0, 0.1, leaf.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


# torchvision's parameter counts minus the 1000-way fc (weight + bias).
TORCHVISION_COUNTS = {18: 11_689_512 - 513_000, 34: 21_797_672 - 513_000,
                      50: 25_557_032 - 2_049_000}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_shapes_and_parameter_counts_match_torchvision(depth):
  model = resnet.ResNet(depth=depth, last_stride=2)
  v = _abstract_init(model, (1, 64, 32, 3))
  assert _count(v["params"]) == TORCHVISION_COUNTS[depth]
  c = resnet.out_channels(depth)
  for last_stride, hw in ((2, (2, 1)), (1, (4, 2))):
    out = jax.eval_shape(lambda v, x, s=last_stride: resnet.ResNet(depth, s).apply(v, x, train=False),
                         v, jnp.zeros((3, 64, 32, 3)))
    assert out.shape == (3, *hw, c)
  p = v["params"]
  assert p["stem"]["conv1"]["kernel"].shape == (7, 7, 3, 64)
  assert set(p) == {"stem", "layer1", "layer2", "layer3", "layer4"}
  assert ("downsample_conv" in p["layer1"]["block0"]) == (depth == 50)
  assert "downsample_conv" in p["layer4"]["block0"] and "downsample_conv" not in p["layer4"]["block1"]
  assert ("conv3" in p["layer1"]["block0"]) == (depth == 50)
  assert set(v["batch_stats"]["stem"]["bn1"]) == {"mean", "var"}


def test_resnet50_feature_map_at_reid_resolution():
  model = resnet.ResNet50(last_stride=1)
  v = _abstract_init(model, (1, 288, 144, 3))
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), v, jnp.zeros((4, 288, 144, 3)))
  assert out.shape == (4, 18, 9, 2048)


def test_stem_and_stage_compose_to_resnet():
  """The separate modules with the ResNet's variables give the ResNet's output."""
  x = jax.random.normal(jax.random.key(1), (2, 64, 32, 3))
  model = resnet.ResNet18(last_stride=1)
  v = random_variables(model, x.shape, train=False)
  ref = model.apply(v, x, train=False)

  def sub(name):
    return {c: v[c][name] for c in ("params", "batch_stats")}

  y = resnet.ResNetStem().apply(sub("stem"), x, train=False)
  assert y.shape == (2, 16, 8, 64)
  for layer in (1, 2, 3, 4):
    stage = resnet.make_stage(18, layer, 1 if layer == 4 else None)
    y = stage.apply(sub(f"layer{layer}"), y, train=False)
  np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def test_bfloat16_compute_keeps_float32_parameters():
  model = resnet.ResNet18(dtype=jnp.bfloat16)
  v = _abstract_init(model, (2, 64, 32, 3))
  assert {a.dtype for a in jax.tree.leaves(v)} == {jnp.dtype(jnp.float32)}
  y, new = jax.eval_shape(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]),
                          v, jnp.zeros((2, 64, 32, 3)))
  assert y.dtype == jnp.bfloat16 and y.shape == (2, 4, 2, 512)
  assert {a.dtype for a in jax.tree.leaves(new)} == {jnp.dtype(jnp.float32)}
  # Numerically: one block in bfloat16 stays close to float32.
  x = jax.random.normal(jax.random.key(0), (2, 8, 4, 64))
  block = lambda dtype: resnet.BasicBlock(128, stride=2, dtype=dtype)
  bv = random_variables(block(jnp.float32), x.shape, train=False)
  y32 = block(jnp.float32).apply(bv, x, train=False)
  y16 = block(jnp.bfloat16).apply(bv, x, train=False)
  assert y16.dtype == jnp.bfloat16 and y32.shape == y16.shape == (2, 4, 2, 128)
  assert float(jnp.linalg.norm(y16.astype(jnp.float32) - y32) / jnp.linalg.norm(y32)) < 0.03


def test_conv_init_is_he_fan_out_and_zero_init_residual():
  x = jnp.zeros((1, 4, 4, 256))
  v = jax.jit(lambda: resnet.Bottleneck(64).init(jax.random.key(0), x, train=False))()
  k = np.asarray(v["params"]["conv2"]["kernel"])   # 3x3, 64 -> 64: fan-out 576
  assert k.shape == (3, 3, 64, 64)
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (3 * 3 * 64)), rtol=0.02)
  assert abs(k.mean()) < 2e-3
  k1 = np.asarray(v["params"]["conv3"]["kernel"])   # 1x1, 64 -> 256: fan-out 256
  np.testing.assert_allclose(k1.std(), np.sqrt(2.0 / 256), rtol=0.02)
  np.testing.assert_array_equal(v["params"]["bn3"]["scale"], 1.0)
  assert "downsample_conv" not in v["params"]      # 256 -> 256, stride 1: identity shortcut
  z = jax.jit(lambda: resnet.Bottleneck(64, zero_init_residual=True).init(
      jax.random.key(0), x, train=False)["params"])()
  np.testing.assert_array_equal(z["bn3"]["scale"], 0.0)
  np.testing.assert_array_equal(z["bn2"]["scale"], 1.0)


def test_unknown_depth_is_refused():
  with pytest.raises(ValueError, match="depth 42"):
    _abstract_init(resnet.ResNet(depth=42), (1, 32, 32, 3))


def test_batchnorm_follows_pytorch():
  """Biased variance to normalise, unbiased into the running variance, momentum 0.1 (torch)."""
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, size=(4, 3, 2, 5)).astype(np.float32)
  bn = layers.BatchNorm()
  v = bn.init(jax.random.key(0), x, use_running_average=False)
  np.testing.assert_array_equal(v["batch_stats"]["mean"], 0.0)   # init leaves stats alone
  np.testing.assert_array_equal(v["batch_stats"]["var"], 1.0)
  v = {"params": {"scale": np.linspace(0.5, 2, 5, dtype=np.float32),
                  "bias": np.linspace(-1, 1, 5, dtype=np.float32)},
       "batch_stats": {"mean": np.full(5, 0.5, np.float32), "var": np.full(5, 2.0, np.float32)}}
  y, upd = bn.apply(v, x, use_running_average=False, mutable=["batch_stats"])
  flat = x.reshape(-1, 5).astype(np.float64)
  mean, var, n = flat.mean(0), flat.var(0), flat.shape[0]
  ref = (x - mean) / np.sqrt(var + 1e-5) * v["params"]["scale"] + v["params"]["bias"]
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.9 * 0.5 + 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(upd["batch_stats"]["var"], 0.9 * 2.0 + 0.1 * var * n / (n - 1),
                             rtol=1e-5)
  y_eval = bn.apply(v, x, use_running_average=True)
  ref_eval = (x - 0.5) / np.sqrt(2.0 + 1e-5) * v["params"]["scale"] + v["params"]["bias"]
  np.testing.assert_allclose(y_eval, ref_eval, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
def test_batchnorm_statistics_survive_a_large_mean(groups):
  """|mean| >> std (a conv bias before the non-local blocks' BN): float32 statistics stay exact."""
  rng = np.random.default_rng(3)
  x = (100.0 + 0.01 * rng.normal(size=(8, 4, 3, 6))).astype(np.float32)
  bn = layers.BatchNorm(groups=groups)
  v = {"params": {"scale": np.ones(6, np.float32), "bias": np.zeros(6, np.float32)},
       "batch_stats": {"mean": np.zeros(6, np.float32), "var": np.ones(6, np.float32)}}
  y, upd = bn.apply(v, x, use_running_average=False, mutable=["batch_stats"])
  blocks = x.astype(np.float64).reshape(groups, -1, 6)
  mean, var = blocks.mean(1, keepdims=True), blocks.var(1, keepdims=True)
  ref = ((blocks - mean) / np.sqrt(var + 1e-5)).reshape(x.shape)
  np.testing.assert_allclose(y, ref, atol=2e-3)     # E[x^2] - E[x]^2 would give var ~ 0 or worse
  n = blocks.shape[1]
  np.testing.assert_allclose(upd["batch_stats"]["var"],
                             0.9 + 0.1 * np.mean(var[:, 0] * n / (n - 1), 0), rtol=1e-4)


def test_batchnorm_groups_normalise_each_block_alone():
  """groups=G (one per device, sync_batchnorm=False) == G separate BatchNorms on the blocks."""
  rng = np.random.default_rng(0)
  x = rng.normal(1.0, 2.0, size=(12, 3, 2, 5)).astype(np.float32)
  x[4:8] += 5.0                                   # blocks with different statistics
  v = {"params": {"scale": np.linspace(0.5, 2, 5, dtype=np.float32),
                  "bias": np.linspace(-1, 1, 5, dtype=np.float32)},
       "batch_stats": {"mean": np.full(5, 0.5, np.float32), "var": np.full(5, 2.0, np.float32)}}
  y, upd = layers.BatchNorm(groups=3).apply(v, x, use_running_average=False,
                                            mutable=["batch_stats"])
  parts = [layers.BatchNorm().apply(v, x[i:i + 4], use_running_average=False,
                                    mutable=["batch_stats"]) for i in (0, 4, 8)]
  np.testing.assert_allclose(y, np.concatenate([p[0] for p in parts]), rtol=1e-5, atol=1e-5)
  for key in ("mean", "var"):       # the mean of the three devices' running updates
    want = np.mean([p[1]["batch_stats"][key] for p in parts], axis=0)
    np.testing.assert_allclose(upd["batch_stats"][key], want, rtol=1e-5)
  # Not the global statistics: the shifted block is normalised on its own.
  y_sync = layers.BatchNorm().apply(v, x, use_running_average=False, mutable=["batch_stats"])[0]
  assert np.abs(np.asarray(y) - np.asarray(y_sync)).max() > 0.5
  # Evaluation ignores groups; a batch the groups do not divide is refused.
  np.testing.assert_allclose(layers.BatchNorm(groups=3).apply(v, x[:5], use_running_average=True),
                             layers.BatchNorm().apply(v, x[:5], use_running_average=True))
  with pytest.raises(ValueError, match="sync_batchnorm"):
    layers.BatchNorm(groups=5).apply(v, x, use_running_average=False, mutable=["batch_stats"])


def test_bnneck_has_no_bias_and_returns_float32():
  neck = layers.BNNeck()
  f = jnp.asarray(np.random.default_rng(1).normal(1.0, 2.0, (6, 4)), jnp.bfloat16)
  v = neck.init(jax.random.key(0), f, train=False)
  assert set(v["params"]) == {"scale"}
  # AGW's weights_init_kaiming: BatchNorm1d weight ~ N(1, 0.01^2).
  big = np.asarray(layers.BNNeck().init(jax.random.key(1), jnp.zeros((2, 4096)),
                                        train=False)["params"]["scale"])
  assert abs(big.mean() - 1.0) < 1e-3 and 0.009 < big.std() < 0.011
  out, _ = neck.apply(v, f, train=True, mutable=["batch_stats"])
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(np.mean(np.asarray(out), 0), 0.0, atol=1e-5)


def test_gem_matches_numpy_and_limits():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  for p in (3.0, 2.5):
    out = layers.GeM(p).apply({}, jnp.asarray(x))
    # AGW's gm_pool: (mean(x^p) + 1e-12)^(1/p) on post-ReLU (>= 0) inputs.
    ref = (np.mean(np.maximum(x, 0).astype(np.float64) ** p, axis=(1, 2)) + 1e-12) ** (1.0 / p)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
  # An all-zero channel pools to (1e-12)^(1/3) = 1e-4, with a finite (zero) gradient.
  zero = np.zeros((1, 2, 2, 1), np.float32)
  np.testing.assert_allclose(layers.GeM(3.0).apply({}, zero), [[1e-4]], rtol=1e-4)
  g = jax.grad(lambda v: jnp.sum(layers.GeM(3.0).apply({}, v)))(jnp.asarray(zero))
  np.testing.assert_array_equal(g, 0.0)
  pos = np.abs(x)
  np.testing.assert_allclose(layers.GeM(1.0).apply({}, pos), pos.mean((1, 2)), rtol=1e-5)
  np.testing.assert_allclose(layers.GeM(60.0).apply({}, pos), pos.max((1, 2)), rtol=0.05)
  out = layers.GeM(3.0).apply({}, jnp.asarray(x, jnp.bfloat16))
  assert out.dtype == jnp.float32


def test_learnable_gem_has_a_trainable_p():
  gem = layers.GeM(3.0, learnable=True)
  x = jnp.abs(jax.random.normal(jax.random.key(0), (2, 3, 3, 4))) + 0.1
  v = gem.init(jax.random.key(0), x)
  np.testing.assert_allclose(v["params"]["p"], 3.0)
  np.testing.assert_allclose(gem.apply(v, x), layers.GeM(3.0).apply({}, x), rtol=1e-5)
  g = jax.grad(lambda v: jnp.sum(gem.apply(v, x)))(v)
  assert np.isfinite(g["params"]["p"]) and float(g["params"]["p"]) != 0.0


def _numpy_max_pool(x, window=3, stride=2, padding=1):
  """torch's MaxPool2d by loops: values and, per output, the first arg-max (row-major)."""
  n, h, w, c = x.shape
  ho, wo = (h + 2 * padding - window) // stride + 1, (w + 2 * padding - window) // stride + 1
  out = np.empty((n, ho, wo, c), x.dtype)
  argmax = np.empty((n, ho, wo, c, 2), np.int64)
  for b in range(n):
    for i in range(ho):
      for j in range(wo):
        for ch in range(c):
          best, pos = -np.inf, None
          for di in range(window):
            for dj in range(window):
              r, s = i * stride - padding + di, j * stride - padding + dj
              if 0 <= r < h and 0 <= s < w and x[b, r, s, ch] > best:
                best, pos = x[b, r, s, ch], (r, s)
          out[b, i, j, ch], argmax[b, i, j, ch] = best, pos
  return out, argmax


@pytest.mark.parametrize("shape,window,stride,padding", [
    ((2, 9, 7, 3), 3, 2, 1), ((1, 8, 6, 2), 3, 2, 1), ((1, 3, 3, 1), 3, 2, 1),   # the stems' pool
    # windows that tile exactly, overlap by two, leave gaps (stride > window), spill two cells
    ((2, 11, 8, 2), 2, 2, 0), ((2, 11, 8, 2), 3, 1, 1), ((2, 11, 8, 2), 2, 3, 0),
    ((2, 11, 8, 2), 5, 2, 2), ((2, 11, 8, 2), 3, 3, 1)])
def test_max_pool_matches_torch_semantics_and_gradient(shape, window, stride, padding):
  # Integers clipped at 0 (as after a ReLU): many ties, where the gradient must go to one
  # element per window, the first in row-major order, as torch does (converted weights
  # must see the same pool).
  rng = np.random.default_rng(sum(shape) + window * 10 + stride)
  x = np.clip(np.round(rng.normal(size=shape) * 2), 0, None).astype(np.float32)
  want, argmax = _numpy_max_pool(x, window, stride, padding)
  pool = lambda v: layers.max_pool(v, window, stride, padding)
  np.testing.assert_array_equal(np.asarray(pool(jnp.asarray(x))), want)
  g = rng.normal(size=want.shape).astype(np.float32)
  dx = jax.grad(lambda v: jnp.sum(pool(v) * g))(jnp.asarray(x))
  want_dx = np.zeros_like(x)
  for idx in np.ndindex(want.shape):
    r, s = argmax[idx]
    want_dx[idx[0], r, s, idx[3]] += g[idx]
  np.testing.assert_allclose(np.asarray(dx), want_dx, rtol=1e-6, atol=1e-6)


def test_max_pool_keeps_bfloat16_and_refuses_tiny_maps():
  x = jnp.ones((1, 4, 4, 2), jnp.bfloat16)
  assert layers.max_pool(x).dtype == jnp.bfloat16
  assert jax.grad(lambda v: jnp.sum(layers.max_pool(v).astype(jnp.float32)))(x).dtype == jnp.bfloat16
  with pytest.raises(ValueError, match="smaller than"):
    layers.max_pool(jnp.ones((1, 1, 1, 1)), 5, 2, 1)
