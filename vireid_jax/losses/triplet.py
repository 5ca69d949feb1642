"""Triplet losses of the AGW and CAJ code bases, over a batch with identity labels.

Both use AGW's Euclidean distance `sqrt(clip(|a|^2 + |b|^2 - 2 a.b, 1e-12))`
in float32 (the Gram matrix at HIGHEST precision, so TF32 matmuls on GPUs do
not eat the cancellation), and count the anchor itself among its positives
(distance ~0), as AGW does. Consequences, both deliberate:
  * an anchor with no other image of its identity (one image per identity)
    gets furthest-positive ~0: the loss pushes its negatives away and stays
    finite;
  * an anchor with no negative in the batch has no triplet: it is left out of
    the mean (the loss is 0 if no anchor has a negative).
`mask` (N,) optionally marks valid rows (e.g. padding excluded): an invalid row
is neither an anchor nor a candidate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_BIG = 1e9   # stands in for +-inf in masked max/min (keeps gradients NaN-free)


def pairwise_distance(x: jax.Array, y: jax.Array | None = None) -> jax.Array:
  """AGW's `pdist_torch`: Euclidean distances (N, M) in float32, clipped at 1e-6."""
  x = x.astype(jnp.float32)
  y = x if y is None else y.astype(jnp.float32)
  d2 = (jnp.sum(jnp.square(x), axis=1)[:, None] + jnp.sum(jnp.square(y), axis=1)[None, :]
        - 2.0 * jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST))
  return jnp.sqrt(jnp.maximum(d2, 1e-12))


def _masks(labels: jax.Array, mask: jax.Array | None):
  n = labels.shape[0]
  valid = jnp.ones((n,), bool) if mask is None else jnp.asarray(mask).astype(bool)
  pair = valid[:, None] & valid[None, :]
  same = labels[:, None] == labels[None, :]
  pos, neg = same & pair, ~same & pair
  anchors = valid & jnp.any(neg, axis=1)
  return pos, neg, anchors


def _mean_over(per_anchor: jax.Array, anchors: jax.Array) -> jax.Array:
  a = anchors.astype(jnp.float32)
  return jnp.sum(jnp.where(anchors, per_anchor, 0.0)) / jnp.maximum(jnp.sum(a), 1.0)


def batch_hard_triplet(feats: jax.Array, labels: jax.Array, margin: float = 0.3,
                       mask: jax.Array | None = None) -> jax.Array:
  """Batch-hard triplet (AGW `TripletLoss`): mean of max(0, d(a,p*) - d(a,n*) + margin).

  p* is the furthest positive and n* the closest negative of each anchor;
  PyTorch's MarginRankingLoss(margin)(d_an, d_ap, 1).
  """
  d = pairwise_distance(feats)
  pos, neg, anchors = _masks(labels, mask)
  d_ap = jnp.max(jnp.where(pos, d, -_BIG), axis=1)
  d_an = jnp.min(jnp.where(neg, d, _BIG), axis=1)
  return _mean_over(jax.nn.relu(d_ap - d_an + margin), anchors)


def softmax_weights(dist: jax.Array, mask: jax.Array) -> jax.Array:
  """AGW's `softmax_weights`: exp(dist - max(dist * mask)) * mask / (sum + 1e-6), per row.

  For the negatives AGW passes -dist, whose masked max is 0, so every exponent
  is <= 0 and nothing overflows; the 1e-6 keeps an empty row at weight 0.
  """
  mask = mask.astype(jnp.float32)
  max_v = jnp.max(dist * mask, axis=1, keepdims=True)
  e = jnp.exp(dist - max_v) * mask
  return e / (jnp.sum(e, axis=1, keepdims=True) + 1e-6)


def _soft_extremes(feats: jax.Array, labels: jax.Array, mask: jax.Array | None,
                   alpha: float = 1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(softly furthest positive, softly closest negative, anchors) per row, as AGW / CAJ.

  fp = sum_p softmax(alpha d_ap)_p d_ap and cn = sum_n softmax(-alpha d_an)_n d_an
  over each anchor's positives / negatives (the weights are not detached).
  """
  d = pairwise_distance(feats)
  pos, neg, anchors = _masks(labels, mask)
  posf, negf = pos.astype(jnp.float32), neg.astype(jnp.float32)
  dist_ap, dist_an = d * posf, d * negf
  w_ap = softmax_weights(dist_ap * alpha, posf)
  w_an = softmax_weights(-dist_an * alpha, negf)
  return jnp.sum(dist_ap * w_ap, axis=1), jnp.sum(dist_an * w_an, axis=1), anchors


def weighted_regularized_triplet(feats: jax.Array, labels: jax.Array,
                                 mask: jax.Array | None = None) -> jax.Array:
  """AGW's `TripletLoss_WRT`: softplus(fp - cn), averaged over anchors (`_soft_extremes`); no margin."""
  furthest_positive, closest_negative, anchors = _soft_extremes(feats, labels, mask)
  # SoftMarginLoss(x, y=1) = log(1 + exp(-x)) = softplus(-x).
  return _mean_over(jax.nn.softplus(furthest_positive - closest_negative), anchors)


# CAJ clamps the squared difference here (exp(88) is near float32's largest value).
ADP_CLAMP = 88.0


def adaptive_triplet(feats: jax.Array, labels: jax.Array, alpha: float = 1.0,
                     gamma: float = 1.0, square: bool = True,
                     mask: jax.Array | None = None) -> jax.Array:
  """CAJ's `TripletLoss_ADP` (ICCV21_CAJ/loss.py), averaged over anchors.

  With fp, cn from `_soft_extremes(alpha)`: `square` (CAJ's --square 1):
  softplus(s * min(gamma (fp - cn)^2, 88)) with s = +1 where fp > cn (a
  violated triplet) and -1 otherwise, the sign a constant (SoftMarginLoss
  with target -s); else softplus(gamma (fp - cn)). alpha = gamma = 1 and
  square=False is WRT.
  """
  fp, cn, anchors = _soft_extremes(feats, labels, mask, alpha)
  if not square:
    return _mean_over(jax.nn.softplus(gamma * (fp - cn)), anchors)
  diff = jnp.minimum(gamma * jnp.square(fp - cn), ADP_CLAMP)
  sign = jax.lax.stop_gradient(jnp.where(fp > cn, 1.0, -1.0))
  return _mean_over(jax.nn.softplus(sign * diff), anchors)
