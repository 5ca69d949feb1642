"""The batched, padded, optionally sharded feature extractor."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from vireid_jax.data import images as images_lib
from vireid_jax.evaluation import features

SIZE = (8, 4)


def _write_images(folder, n, seed=0):
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(n):
    p = os.path.join(folder, f"{i:03d}.png")
    mode_shape = (SIZE[0] + 2, SIZE[1] + 1) if i % 3 else (SIZE[0], SIZE[1], 3)
    arr = rng.integers(0, 256, mode_shape, dtype=np.uint8)   # some grey, some resized
    Image.fromarray(arr).save(p)
    paths.append(p)
  return paths


def _linear_embed(counter):
  w = np.random.default_rng(7).standard_normal((SIZE[0] * SIZE[1] * 3, 5)).astype(np.float32)

  def embed_fn(weights, x, modality):
    del weights
    counter.append(modality)                         # runs once per trace
    return x.reshape(x.shape[0], -1) @ w + 3.0 * modality
  return embed_fn, w


def _direct(paths, w, modality, flip=False):
  x = images_lib.normalize(images_lib.load_images(paths, SIZE)).astype(np.float64)
  e = x.reshape(len(paths), -1) @ w + 3.0 * modality
  if flip:
    e = 0.5 * (e + x[:, :, ::-1, :].reshape(len(paths), -1) @ w + 3.0 * modality)
  return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_batched_equals_direct_and_compiles_once_per_modality(tmp_path):
  paths = _write_images(tmp_path, 11)
  counter = []
  embed_fn, w = _linear_embed(counter)
  extract = features.make_extractor(embed_fn, SIZE, batch_size=4, num_threads=3)
  for modality in (0, 1):
    out = extract(paths, modality)
    assert out.shape == (11, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out, _direct(paths, w, modality), atol=1e-5)
  again = extract(paths[:3], 1)                      # a shorter list: same padded shape
  np.testing.assert_allclose(again, _direct(paths[:3], w, 1), atol=1e-5)
  assert counter == [0, 1]
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_flip_averaging(tmp_path):
  paths = _write_images(tmp_path, 5, seed=1)
  counter = []
  embed_fn, w = _linear_embed(counter)
  out = features.make_extractor(embed_fn, SIZE, batch_size=2, flip=True)(paths, 0)
  np.testing.assert_allclose(out, _direct(paths, w, 0, flip=True), atol=1e-5)
  assert not np.allclose(out, _direct(paths, w, 0), atol=1e-3)   # flipping changed something


def test_empty_list_and_bad_image(tmp_path):
  counter = []
  embed_fn, _ = _linear_embed(counter)
  extract = features.make_extractor(embed_fn, SIZE, batch_size=4)
  assert extract([], 0).shape == (0, 5)
  bad = tmp_path / "bad.jpg"
  bad.write_bytes(b"not an image")
  with pytest.raises(images_lib.BadImageError, match="bad.jpg"):
    extract([str(bad)], 0)


def test_sharded_over_four_simulated_devices(tmp_path):
  paths = _write_images(tmp_path, 10, seed=2)
  expected = tmp_path / "expected.npy"
  counter = []
  embed_fn, w = _linear_embed(counter)
  np.save(expected, _direct(paths, w, 1))
  code = textwrap.dedent(f"""
      import numpy as np, jax
      from vireid_jax.evaluation import features
      assert jax.device_count() == 4, jax.devices()
      mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
      w = np.random.default_rng(7).standard_normal(({SIZE[0] * SIZE[1] * 3}, 5)).astype(np.float32)
      embed = lambda v, x, m: x.reshape(x.shape[0], -1) @ w + 3.0 * m
      out = features.make_extractor(embed, {SIZE}, 8, mesh=mesh)({paths!r}, 1)
      np.testing.assert_allclose(out, np.load({str(expected)!r}), atol=1e-5)
      try:
        features.make_extractor(embed, {SIZE}, 6, mesh=mesh)
        raise SystemExit("batch 6 on 4 devices was accepted")
      except ValueError as e:
        assert "multiple of the 4 devices" in str(e)
      print("ok")
  """)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
  assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr


def test_mesh_without_data_axis_is_refused():
  import jax
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("model",))
  with pytest.raises(ValueError, match="'data'"):
    features.make_extractor(lambda v, x, m: jnp.zeros((x.shape[0], 2)), SIZE, 4, mesh=mesh)


def test_new_weights_reuse_the_compiled_function_and_cached_images(tmp_path):
  """A run's evaluations: one compilation whatever the weights; files read once with the cache."""
  paths = _write_images(tmp_path, 6, seed=3)
  traces = []

  def embed_fn(weights, x, modality):
    traces.append(modality)
    return x.reshape(x.shape[0], -1) @ weights["w"] + 3.0 * modality

  rng = np.random.default_rng(0)
  w1, w2 = (rng.standard_normal((SIZE[0] * SIZE[1] * 3, 5)).astype(np.float32) for _ in "ab")
  extract = features.make_extractor(embed_fn, SIZE, batch_size=4, cache_images=True)
  first = extract(paths, 1, {"w": w1})
  for p in paths:                  # the cache holds the decoded images: files are not read again
    os.remove(p)
  second = extract(paths, 1, {"w": w2})
  assert traces == [1]
  assert not np.allclose(first, second, atol=1e-3)      # the new weights were used
  x = np.stack([images_lib.normalize(images_lib.load_image(p, SIZE)) for p in _write_images(
      tmp_path, 6, seed=3)]).reshape(6, -1).astype(np.float64)
  for w, out in ((w1, first), (w2, second)):
    e = x @ w + 3.0
    np.testing.assert_allclose(out, e / np.linalg.norm(e, axis=1, keepdims=True), atol=1e-5)
  uncached = features.make_extractor(embed_fn, SIZE, batch_size=4)
  uncached(paths, 1, {"w": w1})
  os.remove(paths[0])
  with pytest.raises(FileNotFoundError):
    uncached(paths, 1, {"w": w1})
