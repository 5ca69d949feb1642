"""Cross-modality feature distribution consistency (docs/method.md, "Losses").

Each modality's features are modelled as a Gaussian with diagonal covariance,
estimated in the batch (biased variance, floored), either per identity
present in both modalities (`level="identity"`) or over the whole batch
(`level="batch"`); the per-dimension divergence between the visible and the
infrared Gaussian is averaged over dimensions (and over identities).

Static shapes throughout, so it jits: identities are grouped with label
equality matrices over the rows of the batch (no `jnp.unique`). The visible
rows index the candidate identities; each is weighted 1 / (its number of
visible rows), so every identity counts once whatever K is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LEVELS = ("identity", "batch")
DIVERGENCES = ("sym_kl", "w2")
NORMALIZE = ("l2", "none")

_HI = jax.lax.Precision.HIGHEST


def gaussian_sym_kl(mu_p, var_p, mu_q, var_q) -> jax.Array:
  """0.5 [KL(p||q) + KL(q||p)] of 1-D Gaussians, elementwise.

  = 0.25 [s_p/s_q + s_q/s_p - 2 + (mu_p - mu_q)^2 (1/s_p + 1/s_q)]; variances
  must be > 0 (floor them first). Plain arithmetic, so numpy arrays stay numpy
  (and float64): the embedding plots (`tools/embeddings.py`) use it too.
  """
  d2 = (mu_p - mu_q) ** 2
  return 0.25 * (var_p / var_q + var_q / var_p - 2.0 + d2 * (1.0 / var_p + 1.0 / var_q))


def gaussian_w2(mu_p, var_p, mu_q, var_q) -> jax.Array:
  """Squared 2-Wasserstein distance of 1-D Gaussians: (mu_p - mu_q)^2 + (sd_p - sd_q)^2."""
  return jnp.square(mu_p - mu_q) + jnp.square(jnp.sqrt(var_p) - jnp.sqrt(var_q))


_DIVERGENCE_FNS = {"sym_kl": gaussian_sym_kl, "w2": gaussian_w2}


def _l2(x: jax.Array) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), 1e-12))


def _group_mean(member: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Means of x's rows over each row of the 0/1 matrix `member` (K, R); (K, D), counts (K,)."""
  count = jnp.sum(member, axis=1)
  mean = jnp.matmul(member, x, precision=_HI) / jnp.maximum(count, 1.0)[:, None]
  return mean, count


def _identity_gaussians(feat, labels, anchor_labels):
  """Per anchor label: mean, biased variance (two-pass) and row count of the rows with that label."""
  own = (labels[:, None] == labels[None, :]).astype(jnp.float32)
  centred = feat - _group_mean(own, feat)[0]          # each row minus its identity's mean
  member = (anchor_labels[:, None] == labels[None, :]).astype(jnp.float32)
  mean, count = _group_mean(member, feat)
  var, _ = _group_mean(member, jnp.square(centred))
  return mean, var, count


def distribution_consistency(feat_vis: jax.Array, feat_ir: jax.Array, labels_vis: jax.Array,
                             labels_ir: jax.Array, level: str = "identity",
                             divergence: str = "sym_kl", normalize: str = "l2",
                             var_floor: float = 1e-6) -> jax.Array:
  """Divergence between the visible and the infrared feature Gaussians (scalar, float32).

  Args:
    feat_vis, feat_ir: (N, D) and (M, D) features of the two modalities.
    labels_vis, labels_ir: (N,), (M,) identity labels.
    level: "identity" (average over identities present in both modalities;
      0 if there is none) or "batch" (one Gaussian per modality).
    divergence: "sym_kl" or "w2" (`gaussian_sym_kl`, `gaussian_w2`).
    normalize: "l2" (unit-norm features first) or "none".
    var_floor: lower bound of every variance; with one image per identity and
      modality the variance is exactly the floor, so the loss stays finite.
  """
  if level not in LEVELS:
    raise ValueError(f"loss.dist_level={level!r}: use one of {LEVELS}.")
  if divergence not in DIVERGENCES:
    raise ValueError(f"loss.dist_divergence={divergence!r}: use one of {DIVERGENCES}.")
  if normalize not in NORMALIZE:
    raise ValueError(f"loss.dist_normalize={normalize!r}: use one of {NORMALIZE}.")
  fv, fi = feat_vis.astype(jnp.float32), feat_ir.astype(jnp.float32)
  if normalize == "l2":
    fv, fi = _l2(fv), _l2(fi)
  div = _DIVERGENCE_FNS[divergence]
  if level == "batch":
    mv, mi = jnp.mean(fv, axis=0), jnp.mean(fi, axis=0)
    vv = jnp.maximum(jnp.mean(jnp.square(fv - mv), axis=0), var_floor)
    vi = jnp.maximum(jnp.mean(jnp.square(fi - mi), axis=0), var_floor)
    return jnp.mean(div(mv, vv, mi, vi))
  mv, vv, count_v = _identity_gaussians(fv, labels_vis, labels_vis)
  mi, vi, count_i = _identity_gaussians(fi, labels_ir, labels_vis)
  per_id = jnp.mean(div(mv, jnp.maximum(vv, var_floor), mi, jnp.maximum(vi, var_floor)), axis=-1)
  weight = jnp.where(count_i > 0, 1.0 / jnp.maximum(count_v, 1.0), 0.0)
  num_ids = jnp.sum(weight)
  return jnp.where(num_ids > 0.5, jnp.sum(weight * per_id) / jnp.maximum(num_ids, 1e-6), 0.0)
