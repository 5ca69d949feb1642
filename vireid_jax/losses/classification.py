"""Identity (classification) loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Mean softmax cross-entropy, float32.

  With `label_smoothing` = e the target is (1 - e) * one_hot + e / C, as the
  `CrossEntropyLabelSmooth` of BoT / AGW.
  """
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  logp = jax.nn.log_softmax(logits, axis=-1)
  target = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  if label_smoothing:
    target = (1.0 - label_smoothing) * target + label_smoothing / num_classes
  return -jnp.mean(jnp.sum(target * logp, axis=-1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Fraction of rows whose arg-max is the label (float32)."""
  return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
