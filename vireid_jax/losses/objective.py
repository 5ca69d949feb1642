"""The training objective (docs/method.md, "Losses"), from ViReIDNet's output dict.

  L = w_id CE(shared) + w_tri Tri(shared feat, all rows)
    + w_intra sum_m [CE(branch_m) + Tri(branch_m feat, rows of m)]
    + w_dist Dist(shared feat of visible rows, shared feat of infrared rows)

Terms with weight 0, or whose outputs are absent (branches off), are neither
computed nor reported. Config values are read as Python floats/strings, so
they are static under jit.
"""

from __future__ import annotations

import dataclasses

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from vireid_jax.data.records import INFRARED, MODALITY_NAMES, VISIBLE
from vireid_jax.losses import classification, distribution, triplet

MODALITIES = (MODALITY_NAMES[VISIBLE], MODALITY_NAMES[INFRARED])   # batch row order


@dataclasses.dataclass(frozen=True)
class LossTerm:
  """One term of the objective, as everything outside the objective sees it.

  Attributes:
    name: its key in `total_loss`'s terms and in the summaries (`loss/<name>`).
    group: the progress line shows each group once, the sum of its terms.
    digits: decimals on the progress line.
  """
  name: str
  group: str
  digits: int = 3


# Every term `total_loss` can return, in a fixed order (the train step's non-finite
# bitmask numbers them by it). A new term is declared here and nowhere else: the
# summaries, the progress line and the non-finite report follow this list.
TERMS = (
    LossTerm("id", "id"),
    LossTerm("tri", "tri"),
    LossTerm("intra_id_visible", "intra"),
    LossTerm("intra_tri_visible", "intra"),
    LossTerm("intra_id_infrared", "intra"),
    LossTerm("intra_tri_infrared", "intra"),
    LossTerm("dist", "dist", digits=4),
    LossTerm("total", "total", digits=4),
)


def term_names() -> tuple[str, ...]:
  return tuple(t.name for t in TERMS)


def triplet_fn(loss_cfg: Mapping[str, Any]) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The configured triplet loss: "wrt" (AGW), "hard" (batch-hard, margin) or "adp" (CAJ)."""
  kind = str(loss_cfg["triplet"])
  if kind == "wrt":
    return triplet.weighted_regularized_triplet
  if kind == "hard":
    margin = float(loss_cfg["margin"])
    return lambda f, y: triplet.batch_hard_triplet(f, y, margin=margin)
  if kind == "adp":
    alpha, gamma = float(loss_cfg["adp_alpha"]), float(loss_cfg["adp_gamma"])
    square = bool(loss_cfg["adp_square"])
    return lambda f, y: triplet.adaptive_triplet(f, y, alpha, gamma, square)
  raise ValueError(f"loss.triplet={kind!r}: use wrt, hard or adp.")


def total_loss(outputs: Mapping[str, Any], labels: jax.Array, loss_cfg: Mapping[str, Any],
               num_visible: int) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(total loss, {term name: scalar}) for a batch of visible rows then infrared rows.

  Args:
    outputs: ViReIDNet's dict ("shared" over all rows; "visible"/"infrared"
      branch outputs over their rows when the model has branches).
    labels: (N + M,) int labels, the N visible ones first.
    loss_cfg: `config.loss`.
    num_visible: N (static).

  Terms: those of `TERMS` whose weight is not zero, and "accuracy" (of the
  shared classifier; not part of the loss).
  """
  n = int(num_visible)
  shared = outputs["shared"]
  if labels.shape[0] != shared["logits"].shape[0] or not 0 < n < labels.shape[0]:
    raise ValueError(f"labels {labels.shape} / num_visible={n} do not fit the "
                     f"{shared['logits'].shape[0]} rows of the outputs.")
  smoothing = float(loss_cfg["label_smoothing"])
  ce = lambda logits, y: classification.cross_entropy(logits, y, smoothing)
  tri = triplet_fn(loss_cfg)
  w_id, w_tri = float(loss_cfg["w_id"]), float(loss_cfg["w_tri"])
  w_intra, w_dist = float(loss_cfg["w_intra"]), float(loss_cfg["w_dist"])

  terms: dict[str, jax.Array] = {}
  total = jnp.zeros((), jnp.float32)
  if w_id:
    terms["id"] = ce(shared["logits"], labels)
    total += w_id * terms["id"]
  if w_tri:
    terms["tri"] = tri(shared["feat"], labels)
    total += w_tri * terms["tri"]
  if w_intra:
    for name, rows in zip(MODALITIES, (slice(0, n), slice(n, None))):
      if name not in outputs:
        continue
      out, y = outputs[name], labels[rows]
      terms[f"intra_id_{name}"] = ce(out["logits"], y)
      terms[f"intra_tri_{name}"] = tri(out["feat"], y)
      total += w_intra * (terms[f"intra_id_{name}"] + terms[f"intra_tri_{name}"])
  if w_dist:
    feat = shared["feat"]
    terms["dist"] = distribution.distribution_consistency(
        feat[:n], feat[n:], labels[:n], labels[n:], level=str(loss_cfg["dist_level"]),
        divergence=str(loss_cfg["dist_divergence"]), normalize=str(loss_cfg["dist_normalize"]),
        var_floor=float(loss_cfg["dist_var_floor"]))
    total += w_dist * terms["dist"]
  terms["total"] = total
  terms["accuracy"] = classification.accuracy(shared["logits"], labels)
  return total, terms
