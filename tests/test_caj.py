"""CAJ (ICCV 2021) as its code runs it: channel augmentations, the exchanged view, the ADP triplet.

Hand-computed cases for every operation on normalised images, the per-image
probabilities of each view against CAJ's transforms, the pipeline's third
view, the train step's batch of three views, and TripletLoss_ADP against our
torch port of it.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax import config_defaults
from vireid_jax.data import channel_augment as ca
from vireid_jax.data.images import IMAGENET_MEAN, IMAGENET_STD
from vireid_jax.losses import triplet
from vireid_jax.training import train_step



def normalised(pixels):
  return (np.asarray(pixels, np.float64) - IMAGENET_MEAN) / IMAGENET_STD


# ----------------------------------------------------------------------------
# Applying the operations (on the device, to normalised images).

def test_apply_ops_by_hand():
  x = np.zeros((4, 3, 2, 3), np.float32)
  x[..., 0], x[..., 1], x[..., 2] = 1.0, -2.0, 0.5
  ops = np.array([[ca.NO_CHANNEL_OP, 0, 0, 0, 0],       # nothing
                  [1, 0, 0, 0, 0],                       # copy G into R, G, B
                  [ca.GRAY, 0, 0, 0, 0],                 # grayscale
                  [ca.NO_CHANNEL_OP, 1, 0, 2, 1]],       # erase rows 1-2, column 0
                 np.int32)
  out = np.asarray(ca.apply_ops(jnp.asarray(x), jnp.asarray(ops)))
  np.testing.assert_array_equal(out[0], x[0])
  np.testing.assert_array_equal(out[1], -2.0)
  # 0.2989 * 1 + 0.587 * (-2) + 0.114 * 0.5 = -0.8181
  np.testing.assert_allclose(out[2], -0.8181, rtol=1e-6)
  np.testing.assert_allclose(out[3, 1:3, 0], [[0.4914, 0.4822, 0.4465]] * 2, rtol=1e-7)
  np.testing.assert_array_equal(out[3, 0], x[3, 0])
  np.testing.assert_array_equal(out[3, :, 1], x[3, :, 1])


def test_erasing_comes_before_the_channel_operation_and_both_act_on_normalised_values():
  """CAJ's transforms end Normalize -> ChannelRandomErasing -> ChannelAdapGray / ChannelExchange."""
  pixel = np.array([255, 0, 128], np.uint8)
  x = np.broadcast_to(pixel, (2, 2, 2, 3))
  ops = np.array([[ca.GRAY, 0, 0, 1, 1], [0, 0, 0, 1, 2]], np.int32)
  out = np.asarray(ca.apply_ops(train_step.normalize_images(jnp.asarray(x), jnp.float32), ops))
  n = normalised(pixel)                          # (2.2489, -2.0357, 0.4265)
  gray = 0.2989 * n[0] + 0.587 * n[1] + 0.114 * n[2]
  assert gray == pytest.approx(-0.4741, abs=1e-4)
  # Gray of the normalised values, not the normalisation of a gray uint8 pixel (~ -0.02..0.4).
  np.testing.assert_allclose(out[0, 1, 1], [gray] * 3, rtol=1e-5)
  erased_gray = 0.2989 * 0.4914 + 0.587 * 0.4822 + 0.114 * 0.4465
  np.testing.assert_allclose(out[0, 0, 0], [erased_gray] * 3, rtol=1e-6)
  # Channel R copied everywhere, the erased row too (R's erase value 0.4914).
  np.testing.assert_allclose(out[1, 1, 0], [n[0]] * 3, rtol=1e-5)
  np.testing.assert_allclose(out[1, 0, :], [[0.4914] * 3] * 2, rtol=1e-6)


# ----------------------------------------------------------------------------
# Drawing them (on the host): CAJ's algorithm, its probabilities, per view.

class ScriptedRng:
  """Stands in for np.random.Generator: returns scripted draws, checks their ranges."""

  def __init__(self, uniforms, integers):
    self.uniforms, self.integers_ = list(uniforms), list(integers)
    self.calls = []

  def uniform(self, low=0.0, high=1.0):
    self.calls.append(("uniform", low, high))
    return low + (high - low) * self.uniforms.pop(0)

  def integers(self, low, high):
    self.calls.append(("integers", low, high))
    return low + self.integers_.pop(0)


def test_erasing_rectangle_by_hand():
  # Gate 0.3 <= 0.5: erase. Attempt 1: area 0.4 of 288x144, aspect 0.3 -> w = round(sqrt(
  # 16588.8 / 0.3)) = 235 >= 144: retry. Attempt 2: area 0.1 -> 4147.2, aspect 2 ->
  # h = round(91.07) = 91, w = round(45.54) = 46; top in 0..197, left in 0..98.
  u_area = lambda frac: (frac - 0.02) / 0.38
  u_aspect = lambda r: (r - 0.3) / (1 / 0.3 - 0.3)
  rng = ScriptedRng([0.3, u_area(0.4), u_aspect(0.3), u_area(0.1), u_aspect(2.0)], [5, 7])
  assert ca.draw_erase(rng, 288, 144, 0.5) == (5, 7, 91, 46)
  assert rng.calls[-2:] == [("integers", 0, 198), ("integers", 0, 99)]
  # Gate 0.7 > 0.5: no erasing, nothing else drawn.
  rng = ScriptedRng([0.7], [])
  assert ca.draw_erase(rng, 288, 144, 0.5) == (0, 0, 0, 0) and len(rng.calls) == 1


def test_channel_choice_by_hand():
  # ChannelAdapGray(0.5): 0-2 copy a channel; 3 -> gray iff U(0, 1) <= 0.5.
  assert ca.draw_channel(ScriptedRng([], [2]), ca.INFRARED, 0.5) == 2
  assert ca.draw_channel(ScriptedRng([0.4], [3]), ca.INFRARED, 0.5) == ca.GRAY
  assert ca.draw_channel(ScriptedRng([0.6], [3]), ca.INFRARED, 0.5) == ca.NO_CHANNEL_OP
  rng = ScriptedRng([], [1])
  assert ca.draw_channel(rng, ca.EXCHANGED, 0.0) == 1 and rng.calls == [("integers", 0, 3)]
  assert ca.draw_channel(ScriptedRng([], []), ca.VISIBLE, 0.5) == ca.NO_CHANNEL_OP
  assert ca.draw_channel(ScriptedRng([], []), ca.INFRARED, 0.0) == ca.NO_CHANNEL_OP


def _draws(view, erase, gray, n=4000, size=(288, 144)):
  return ca.step_ops(0, 1, range(n), [view] * n, size, erase, gray)


def test_per_image_probabilities_of_each_view():
  n = 4000
  tol = 4 * np.sqrt(0.25 / n)                    # 4 standard deviations
  ir = _draws(ca.INFRARED, 0.5, 0.5, n)
  freq = {c: np.mean(ir[:, 0] == c) for c in (-1, 0, 1, 2, 3)}
  for c in (0, 1, 2):
    assert abs(freq[c] - 0.25) < tol                # a channel copied: 3/4 in all
  assert abs(freq[ca.GRAY] - 0.125) < tol and abs(freq[ca.NO_CHANNEL_OP] - 0.125) < tol
  assert abs(np.mean(ir[:, 3] > 0) - 0.5) < tol     # erased with probability 0.5
  ex = _draws(ca.EXCHANGED, 0.5, 0.0, n)
  assert set(np.unique(ex[:, 0])) == {0, 1, 2}     # always exchanged, never gray
  assert max(abs(np.mean(ex[:, 0] == c) - 1 / 3) for c in (0, 1, 2)) < tol
  vis = _draws(ca.VISIBLE, 0.5, 0.5, n)
  assert (vis[:, 0] == ca.NO_CHANNEL_OP).all()
  assert abs(np.mean(vis[:, 3] > 0) - 0.5) < tol
  assert (_draws(ca.VISIBLE, 0.0, 0.5, 100)[:, 1:] == 0).all()


def test_erased_rectangles_follow_caj_ranges():
  h, w = 288, 144
  ops = _draws(ca.VISIBLE, 1.0, 0.0, 3000)
  top, left, eh, ew = ops[:, 1], ops[:, 2], ops[:, 3], ops[:, 4]
  assert (eh > 0).all() and (eh < h).all() and (ew < w).all()
  assert (top >= 0).all() and (top + eh <= h).all() and (left >= 0).all() and (left + ew <= w).all()
  area = eh * ew / (h * w)
  assert area.min() > 0.018 and area.max() < 0.42          # U(0.02, 0.4), up to rounding
  aspect = eh / ew
  assert aspect.min() > 0.28 and aspect.max() < 3.6        # U(0.3, 1/0.3), up to rounding
  # Top-left corners spread over their whole range (uniform, both ends included).
  assert (top == 0).any() and (top == h - eh).any()


def test_draws_are_a_pure_function_of_seed_step_and_row():
  a = ca.step_ops(3, 7, [0, 5, 9], [0, 1, 2], (64, 32), 0.5, 0.5)
  b = ca.step_ops(3, 7, [9, 0], [2, 0], (64, 32), 0.5, 0.5)
  np.testing.assert_array_equal(a[[2, 0]], b)
  assert not np.array_equal(a, ca.step_ops(3, 8, [0, 5, 9], [0, 1, 2], (64, 32), 0.5, 0.5))


# ----------------------------------------------------------------------------
# The train step's batch of three views.

def test_model_inputs_join_the_exchanged_view_per_shard():
  n = 4
  vis = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
  batch = {"visible": vis, "visible_exchanged": vis + 100, "infrared": vis + 200,
           "visible_labels": np.arange(n, dtype=np.int32),
           "infrared_labels": np.arange(n, dtype=np.int32),
           "visible_exchanged_ops": np.array([[0, 0, 0, 0, 0]] * n, np.int32)}
  for shards, order in ((1, [0, 1, 2, 3, 100, 101, 102, 103]),
                        (2, [0, 1, 100, 101, 2, 3, 102, 103])):
    visible, infrared, labels = train_step.model_inputs(batch, jnp.float32, shards)
    assert visible.shape == (2 * n, 2, 2, 3) and infrared.shape == (n, 2, 2, 3)
    # Row r of the joined visible block is the image whose R value is order[r]; the
    # exchanged rows had R copied into every channel (ops channel 0).
    np.testing.assert_allclose(visible[:, 0, 0, 0], normalised(np.stack(
        [order] * 3, -1))[:, 0], rtol=1e-5)
    exchanged = np.asarray(visible)[np.asarray(order) >= 100]
    np.testing.assert_array_equal(exchanged[..., 0], exchanged[..., 2])
    np.testing.assert_array_equal(labels, [o % 100 for o in order] + list(range(n)))


def test_caj_step_trains_on_three_views():
  """One jitted step of a tiny model with CAJ's batch: 3 views, ADP triplet, finite losses."""
  from vireid_jax.data import fake  # pylint: disable=g-import-not-at-top
  from vireid_jax.models import vireid  # pylint: disable=g-import-not-at-top
  from vireid_jax.training import optimizer  # pylint: disable=g-import-not-at-top
  c = config_defaults.caj_baseline(config_defaults.base_config())
  # ResNet-18 without non-local blocks (tests/test_agw_parity.py covers those); 64x64, as
  # XLA:CPU runs 3x3 convolutions on maps narrower than 3 very slowly.
  c.model.depth, c.model.dtype, c.model.non_local = 18, "float32", False
  p, k, size = 2, 2, (64, 64)
  batch = fake.fake_batch(0, p, k, size, num_classes=4)
  n = p * k
  batch["visible_exchanged"] = batch["visible"][::-1]
  for name, view in (("visible", ca.VISIBLE), ("visible_exchanged", ca.EXCHANGED),
                     ("infrared", ca.INFRARED)):
    batch[f"{name}_ops"] = ca.step_ops(0, 0, range(n), [view] * n, size, 0.5, 0.5)
  model = vireid.ViReIDNet.from_config(c.model, num_classes=4)
  v = vireid.init_variables(model, jax.random.key(0), size)
  tx = optimizer.make_optimizer(c.optim, vireid.param_groups(v["params"]), 10)
  state = train_step.create_train_state(v, tx, jnp.float32)
  step = jax.jit(train_step.make_train_step(model, tx, c.loss, jnp.float32))
  state, metrics = step(state, batch)
  assert float(metrics["train/nonfinite"]) == 0.0 and int(state.step) == 1
  assert np.isfinite(float(metrics["loss/tri"])) and float(metrics["loss/tri"]) > 0
  assert set(k for k in metrics if k.startswith("loss/")) == {"loss/id", "loss/tri", "loss/total"}


# ----------------------------------------------------------------------------
# CAJ's TripletLoss_ADP.

def test_adp_by_hand_and_reductions():
  # Two identities on a line: a, a' at 0 and 1; b at 3. Anchor a: positives {a (0), a' (1)}:
  # weights exp(d - max) / (sum + 1e-6) = (e^-1, 1) / (1 + e^-1 + 1e-6); negative b: the
  # masked max of -d is 0 (AGW/CAJ take it over the whole row), weight e^-3 / (e^-3 + 1e-6).
  feats = jnp.array([[0.0], [1.0], [3.0]])
  labels = jnp.array([0, 0, 1])
  fp, cn, _ = triplet._soft_extremes(feats, labels, None)
  fp_a = 1.0 / (1.0 + np.exp(-1) + 1e-6)
  cn_a = 3 * np.exp(-3) / (np.exp(-3) + 1e-6)
  cn_a2 = 2 * np.exp(-2) / (np.exp(-2) + 1e-6)
  cn_b = (3 * np.exp(-3) + 2 * np.exp(-2)) / (np.exp(-3) + np.exp(-2) + 1e-6)
  np.testing.assert_allclose(fp, [fp_a, fp_a, 0.0], atol=1e-6)
  np.testing.assert_allclose(cn, [cn_a, cn_a2, cn_b], rtol=1e-6)
  # square: fp < cn for every anchor -> sign -1: softplus(-(fp - cn)^2), averaged.
  want = np.mean(np.log1p(np.exp(-(np.array([fp_a, fp_a, 0.0]) - [cn_a, cn_a2, cn_b]) ** 2)))
  np.testing.assert_allclose(triplet.adaptive_triplet(feats, labels), want, rtol=1e-5)
  # alpha = gamma = 1 without the square is AGW's WRT.
  rng = np.random.default_rng(0)
  f = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
  y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
  np.testing.assert_allclose(triplet.adaptive_triplet(f, y, square=False),
                             triplet.weighted_regularized_triplet(f, y), rtol=1e-6)
  # A violated triplet (fp > cn) is pushed by softplus(+d): the loss grows with d.
  far = jnp.array([[0.0], [5.0], [1.0]])
  fp, cn, _ = triplet._soft_extremes(far, labels, None)
  assert float(fp[0]) > float(cn[0])
  assert float(triplet.adaptive_triplet(far, labels)) > np.log(2)


def test_adp_matches_the_torch_port():
  torch = pytest.importorskip("torch")
  from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(4), 6)                     # 3 views x K = 2 per identity
  for scale in (0.3, 3.0):                                # both signs of fp - cn occur
    feats = (scale * rng.normal(size=(24, 16))).astype(np.float32)
    for alpha, gamma, square in ((1.0, 1.0, True), (2.0, 0.5, True), (1.0, 1.0, False)):
      ours = triplet.adaptive_triplet(jnp.asarray(feats), jnp.asarray(labels), alpha, gamma,
                                      square)
      tf_ = torch.from_numpy(feats.astype(np.float64)).requires_grad_(True)
      theirs = tr.adaptive_triplet(tf_, torch.from_numpy(labels), alpha, gamma, square)
      assert float(ours) == pytest.approx(float(theirs.detach()), rel=1e-5)
      theirs.backward()
      grad = jax.grad(lambda f: triplet.adaptive_triplet(f, jnp.asarray(labels), alpha, gamma,
                                                         square))(jnp.asarray(feats))
      np.testing.assert_allclose(grad, tf_.grad.numpy(), rtol=1e-3, atol=1e-5)
