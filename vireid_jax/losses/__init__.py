"""Losses of the method, as pure jnp functions (float32 inside, jit-friendly, no TF).

  classification.cross_entropy      identity loss (optional label smoothing)
  triplet.batch_hard_triplet        batch-hard triplet with margin (AGW `TripletLoss`)
  triplet.weighted_regularized_triplet  AGW's `TripletLoss_WRT`
  triplet.adaptive_triplet          CAJ's `TripletLoss_ADP`
  distribution.distribution_consistency  cross-modality Gaussian divergence (sym-KL | W2)
  objective.total_loss              their weighted sum (docs/method.md, "Losses")
"""
