"""Losses against direct numpy computations, closed forms against integrals, invariances, NaN safety."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from vireid_jax import config_defaults
from vireid_jax.losses import classification, distribution, objective, triplet


# Jitted once per shape: XLA:CPU compiles one small program faster than it compiles
# every primitive of an eager call.
wrt = jax.jit(triplet.weighted_regularized_triplet)
hard = jax.jit(triplet.batch_hard_triplet)
dist = jax.jit(distribution.distribution_consistency,
               static_argnames=("level", "divergence", "normalize", "var_floor"))
ce = jax.jit(classification.cross_entropy, static_argnames="label_smoothing")


def batch(p=4, k=3, d=8, seed=0, scale=1.0):
  rng = np.random.default_rng(seed)
  labels = np.repeat(rng.choice(50, p, replace=False), k).astype(np.int32)
  centres = rng.normal(size=(50, d))
  feats = (centres[labels] + 0.7 * rng.normal(size=(p * k, d))) * scale
  return feats.astype(np.float32), labels


def np_dist(x):
  x = x.astype(np.float64)
  d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
  return np.sqrt(np.maximum(d2, 1e-12))


# ---------------------------------------------------------------------------
# Cross-entropy.

def test_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 5)) * 3
  labels = np.array([0, 4, 2, 2, 1, 3])
  for eps in (0.0, 0.1):
    ref = 0.0
    for row, y in zip(logits, labels):
      logp = row - np.log(np.exp(row).sum())
      target = np.full(5, eps / 5)
      target[y] += 1 - eps
      ref -= (target * logp).sum() / len(labels)
    out = classification.cross_entropy(jnp.asarray(logits, jnp.float32), labels, eps)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
  acc = classification.accuracy(jnp.asarray(logits), labels)
  np.testing.assert_allclose(acc, np.mean(logits.argmax(1) == labels))


# ---------------------------------------------------------------------------
# Triplets.

def np_batch_hard(x, labels, margin):
  d = np_dist(x)
  losses = []
  for i in range(len(labels)):
    pos, neg = labels == labels[i], labels != labels[i]
    losses.append(max(0.0, d[i][pos].max() - d[i][neg].min() + margin))
  return np.mean(losses)


def np_wrt(x, labels):
  """AGW's TripletLoss_WRT, written row by row (self counts as a positive, as in AGW)."""
  d = np_dist(x)
  losses = []
  for i in range(len(labels)):
    dp, dn = d[i][labels == labels[i]], d[i][labels != labels[i]]
    wp = np.exp(dp - dp.max()) / (np.exp(dp - dp.max()).sum() + 1e-6)
    wn = np.exp(-dn) / (np.exp(-dn).sum() + 1e-6)   # AGW's masked max of -d_an is 0
    fp, cn = (dp * wp).sum(), (dn * wn).sum()
    losses.append(np.log1p(np.exp(fp - cn)))
  return np.mean(losses)


@pytest.mark.parametrize("scale", [0.3, 1.0])
def test_triplets_match_numpy(scale):
  x, y = batch(scale=scale)
  for margin in (0.3, 1.0):
    np.testing.assert_allclose(hard(x, y, margin), np_batch_hard(x, y, margin),
                               rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(wrt(x, y), np_wrt(x, y), rtol=1e-4, atol=2e-6)  # float32 softmax weights
  d, ref = np.asarray(triplet.pairwise_distance(x)), np_dist(x)
  off = ~np.eye(len(y), dtype=bool)
  np.testing.assert_allclose(d[off], ref[off], rtol=1e-5)
  # The diagonal is AGW's sqrt(clip(cancellation error, 1e-12)): ~0, not exactly 0.
  assert np.all(d[~off] >= 1e-6) and np.all(d[~off] < 1e-2 * ref[off].mean())


def test_triplets_one_image_per_identity_and_masks():
  x, y = batch(p=6, k=1, seed=2)
  for fn in (wrt, hard):
    val, g = jax.jit(jax.value_and_grad(fn))(jnp.asarray(x), y)
    assert np.isfinite(val) and np.all(np.isfinite(g))
  np.testing.assert_allclose(wrt(x, y), np_wrt(x, y), rtol=1e-4, atol=2e-6)  # float32 softmax weights
  # A single identity: no anchor has a negative, so there is no triplet and the loss is 0.
  x1, y1 = batch(p=1, k=4)
  for fn in (wrt, hard):
    assert float(fn(x1, y1)) == 0.0
  # Masked rows are as if absent.
  x, y = batch(p=4, k=3, seed=3)
  keep = np.ones(12, bool)
  keep[[1, 7]] = False
  for fn in (wrt, hard):
    np.testing.assert_allclose(fn(x, y, mask=keep), fn(x[keep], y[keep]), rtol=1e-6)


# ---------------------------------------------------------------------------
# Gaussian divergences.

def test_sym_kl_and_w2_closed_forms_against_integrals():
  for mp, sp, mq, sq in [(0.0, 1.0, 0.5, 2.0), (1.0, 0.3, -0.5, 0.7), (0.2, 1.5, 0.2, 1.5)]:
    p, q = stats.norm(mp, np.sqrt(sp)), stats.norm(mq, np.sqrt(sq))

    def kl(a, b):
      return integrate.quad(lambda t: a.pdf(t) * (a.logpdf(t) - b.logpdf(t)), -30, 30, limit=200)[0]

    ref = 0.5 * (kl(p, q) + kl(q, p))
    np.testing.assert_allclose(distribution.gaussian_sym_kl(mp, sp, mq, sq), ref, rtol=1e-5, atol=1e-9)
    w2 = integrate.quad(lambda u: (p.ppf(u) - q.ppf(u)) ** 2, 0, 1, limit=200)[0]
    np.testing.assert_allclose(distribution.gaussian_w2(mp, sp, mq, sq), w2, rtol=1e-4, atol=1e-7)


def np_dist_loss(fv, fi, lv, li, level, divergence, normalize, floor):
  fv, fi = fv.astype(np.float64), fi.astype(np.float64)
  if normalize == "l2":
    fv = fv / np.linalg.norm(fv, axis=1, keepdims=True)
    fi = fi / np.linalg.norm(fi, axis=1, keepdims=True)

  def div(a, b):
    mp, sp = a.mean(0), np.maximum(a.var(0), floor)
    mq, sq = b.mean(0), np.maximum(b.var(0), floor)
    if divergence == "sym_kl":
      return np.mean(0.25 * (sp / sq + sq / sp - 2 + (mp - mq) ** 2 * (1 / sp + 1 / sq)))
    return np.mean((mp - mq) ** 2 + (np.sqrt(sp) - np.sqrt(sq)) ** 2)

  if level == "batch":
    return div(fv, fi)
  common = sorted(set(lv.tolist()) & set(li.tolist()))
  if not common:
    return 0.0
  return np.mean([div(fv[lv == k], fi[li == k]) for k in common])


def modal_batch(p=4, k=3, d=16, seed=0, shuffle=True):
  rng = np.random.default_rng(seed)
  ids = rng.choice(100, p, replace=False)
  lv, li = np.repeat(ids, k), np.repeat(ids, k)
  if shuffle:
    lv, li = rng.permutation(lv), rng.permutation(li)
  centre = rng.normal(size=(100, d))
  fv = centre[lv] + 0.5 * rng.normal(size=(len(lv), d)) + 0.3
  fi = centre[li] + 0.8 * rng.normal(size=(len(li), d))
  return fv.astype(np.float32), fi.astype(np.float32), lv.astype(np.int32), li.astype(np.int32)


@pytest.mark.parametrize("level", ["identity", "batch"])
@pytest.mark.parametrize("divergence", ["sym_kl", "w2"])
@pytest.mark.parametrize("normalize", ["l2", "none"])
def test_distribution_consistency_matches_numpy(level, divergence, normalize):
  fv, fi, lv, li = modal_batch()
  kw = dict(level=level, divergence=divergence, normalize=normalize, var_floor=1e-6)
  ref = np_dist_loss(fv, fi, lv, li, level, divergence, normalize, 1e-6)
  out = dist(fv, fi, lv, li, **kw)   # jitted: the grouping has static shapes
  np.testing.assert_allclose(out, ref, rtol=2e-5)
  assert out.dtype == jnp.float32
  # Unequal counts per identity, an identity only in one modality (ignored at identity level).
  fv2 = np.concatenate([fv, fv[:3] + 1.0])
  lv2 = np.concatenate([lv, np.array([lv[0], 999, 999], np.int32)])
  ref2 = np_dist_loss(fv2, fi, lv2, li, level, divergence, normalize, 1e-6)
  np.testing.assert_allclose(dist(fv2, fi, lv2, li, **kw), ref2,
                             rtol=2e-5)


def test_distribution_invariances_and_edge_cases():
  fv, fi, lv, li = modal_batch(seed=4)
  f = dist
  base = f(fv, fi, lv, li)
  pv, pi = np.random.default_rng(0).permutation(len(lv)), np.random.default_rng(1).permutation(len(li))
  np.testing.assert_allclose(f(fv[pv], fi[pi], lv[pv], li[pi]), base, rtol=1e-5)
  for div in ("sym_kl", "w2"):
    for level in ("identity", "batch"):
      np.testing.assert_allclose(f(fi, fv, li, lv, level=level, divergence=div),
                                 f(fv, fi, lv, li, level=level, divergence=div), rtol=1e-5)
  np.testing.assert_allclose(f(fv, fv, lv, lv), 0.0, atol=1e-6)
  # No identity in both modalities: the identity-level loss is 0.
  assert float(f(fv, fi, lv, li + 1000)) == 0.0
  # One image per identity and modality: every variance is the floor, loss and gradients finite.
  fv1, fi1, lv1, li1 = modal_batch(p=5, k=1, seed=5)
  for normalize in ("l2", "none"):
    val, grads = jax.jit(jax.value_and_grad(functools.partial(
        distribution.distribution_consistency, normalize=normalize), argnums=(0, 1)))(
            fv1, fi1, lv1, li1)
    ref = np_dist_loss(fv1, fi1, lv1, li1, "identity", "sym_kl", normalize, 1e-6)
    np.testing.assert_allclose(val, ref, rtol=1e-4)
    assert all(np.all(np.isfinite(g)) for g in grads)
  with pytest.raises(ValueError, match="dist_level"):
    f(fv, fi, lv, li, level="camera")


def test_gradients_finite_with_bfloat16_features():
  fv, fi, lv, li = modal_batch(p=4, k=2, d=32, seed=6)
  x, y = np.concatenate([fv, fi]), np.concatenate([lv, li])
  losses = {
      "wrt": lambda a: wrt(a, y),
      "hard": lambda a: hard(a, y),
      "dist": lambda a: distribution.distribution_consistency(a[:8], a[8:], lv, li),
      "dist_w2": lambda a: distribution.distribution_consistency(
          a[:8], a[8:], lv, li, divergence="w2", normalize="none", level="batch"),
      "ce": lambda a: classification.cross_entropy(a, y % 32, 0.1),
  }
  xb = jnp.asarray(x, jnp.bfloat16)
  for name, fn in losses.items():
    val, g = jax.jit(jax.value_and_grad(fn))(xb)
    assert val.dtype == jnp.float32, name
    assert g.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(g, np.float32))), name
    assert np.isfinite(val) and float(jnp.abs(g.astype(jnp.float32)).sum()) > 0, name


def test_losses_are_invariant_to_permuting_the_batch():
  x, y = batch(p=5, k=2, seed=7)
  logits = np.random.default_rng(0).normal(size=(10, 60)).astype(np.float32)
  perm = np.random.default_rng(1).permutation(10)
  for fn in (wrt, hard):
    np.testing.assert_allclose(fn(x[perm], y[perm]), fn(x, y), rtol=1e-6)
  np.testing.assert_allclose(ce(logits[perm], y[perm]),
                             ce(logits, y), rtol=1e-6)


# ---------------------------------------------------------------------------
# The objective.

def fake_outputs(n, m, c=20, d=16, seed=0, branches=True):
  rng = np.random.default_rng(seed)
  head = lambda rows: {"feat": jnp.asarray(rng.normal(size=(rows, d)), jnp.float32),
                       "bn": jnp.asarray(rng.normal(size=(rows, d)), jnp.float32),
                       "logits": jnp.asarray(rng.normal(size=(rows, c)), jnp.float32)}
  out = {"shared": head(n + m)}
  if branches:
    out["visible"], out["infrared"] = head(n), head(m)
  return out


def test_total_loss_is_the_weighted_sum_of_its_terms():
  cfg = config_defaults.base_config().loss
  cfg.w_id, cfg.w_tri, cfg.w_intra, cfg.w_dist, cfg.label_smoothing = 1.0, 0.7, 0.5, 0.2, 0.1
  lv = np.repeat(np.arange(4), 2).astype(np.int32)
  labels = np.concatenate([lv, lv])
  out = fake_outputs(8, 8)
  loss, terms = jax.jit(lambda o, y: objective.total_loss(o, y, cfg, num_visible=8))(out, labels)
  ce_ = lambda o, yy: ce(o["logits"], yy, 0.1)
  expect = {
      "id": ce_(out["shared"], labels), "tri": wrt(out["shared"]["feat"], labels),
      "intra_id_visible": ce_(out["visible"], lv), "intra_tri_visible": wrt(out["visible"]["feat"], lv),
      "intra_id_infrared": ce_(out["infrared"], lv),
      "intra_tri_infrared": wrt(out["infrared"]["feat"], lv),
      "dist": dist(out["shared"]["feat"][:8], out["shared"]["feat"][8:], lv, lv),
  }
  for k, v in expect.items():
    np.testing.assert_allclose(terms[k], v, rtol=1e-6, err_msg=k)
  total = (expect["id"] + 0.7 * expect["tri"] + 0.2 * expect["dist"] + 0.5 * (
      expect["intra_id_visible"] + expect["intra_tri_visible"] + expect["intra_id_infrared"]
      + expect["intra_tri_infrared"]))
  np.testing.assert_allclose(loss, total, rtol=1e-6)
  np.testing.assert_allclose(terms["total"], total, rtol=1e-6)
  assert set(terms) == set(expect) | {"total", "accuracy"}


def test_total_loss_skips_absent_and_zero_weight_terms():
  cfg = config_defaults.base_config().loss
  cfg.triplet, cfg.margin, cfg.w_dist = "hard", 0.5, 0.0
  labels = np.array([0, 1, 1, 0, 1, 0], np.int32)
  out = fake_outputs(3, 3, branches=False)
  loss, terms = objective.total_loss(out, labels, cfg, num_visible=3)
  assert set(terms) == {"id", "tri", "total", "accuracy"}
  np.testing.assert_allclose(terms["tri"], hard(
      out["shared"]["feat"], labels, margin=0.5), rtol=1e-6)
  np.testing.assert_allclose(loss, terms["id"] + terms["tri"], rtol=1e-6)
  cfg.w_intra = 0.0
  _, terms = objective.total_loss(fake_outputs(3, 3), labels, cfg, num_visible=3)
  assert set(terms) == {"id", "tri", "total", "accuracy"}
  cfg.triplet = "soft"
  with pytest.raises(ValueError, match="loss.triplet"):
    objective.total_loss(out, labels, cfg, num_visible=3)
