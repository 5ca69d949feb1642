"""Identity-balanced paired sampler: which images make up training step s.

Each step draws P identities without replacement, then K visible and K
infrared images of each, with replacement and independently per modality
(docs/method.md, "Training batches"). The draw of step s is a pure function of (seed, s), so
the step number is the whole stream position: resuming at step s reproduces
the uninterrupted stream and there is no sampler state to checkpoint.

Multi-host: every host draws the same global step and keeps its own slice of
identities, so hosts see disjoint identities and together form exactly the
global batch, with no communication.

Numpy only (no TensorFlow): the tf.data pipeline and tests both use it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vireid_jax.data.records import TrainSet

# Mixed into every seed so that the sampler's stream is independent of other
# streams (augmentation, model init) built from the same config seed.
_SAMPLER_STREAM = 0x5A3D1E


def epoch_steps(num_visible: int, num_infrared: int, identities: int, instances: int) -> int:
  """Steps per epoch by AGW's rule: max(#visible, #infrared) // (P*K) + 1.

  AGW's (and CAJ's) `IdentitySampler` draws `int(N / (P*K)) + 1` batches per
  epoch with N the larger modality's image count (SYSU-MM01: 22,258 visible
  -> 696 steps at P*K = 32; RegDB: 2,060 -> 65). The learning-rate schedule
  counts epochs, so this sets when warm-up ends and the decays happen.
  """
  pk = int(identities) * int(instances)
  if pk < 1:
    raise ValueError(f"identities * instances = {pk}: both must be >= 1.")
  return max(int(num_visible), int(num_infrared)) // pk + 1


def steps_per_epoch(train_set: TrainSet, identities: int, instances: int) -> int:
  """`epoch_steps` of a training set."""
  return epoch_steps(len(train_set.visible), len(train_set.infrared), identities, instances)


def _label_arrays(source) -> tuple[np.ndarray, np.ndarray, int]:
  """(visible labels, infrared labels, num_classes) from a TrainSet or two arrays."""
  if isinstance(source, TrainSet):
    vis = np.array([r.label for r in source.visible], np.int64)
    ir = np.array([r.label for r in source.infrared], np.int64)
    return vis, ir, int(source.num_classes)
  try:
    vis_labels, ir_labels = source
  except (TypeError, ValueError):
    raise TypeError(
        "PairedIdentitySampler needs a TrainSet or a pair (visible_labels, "
        f"infrared_labels); got {type(source).__name__}.") from None
  vis = np.asarray(vis_labels, np.int64).reshape(-1)
  ir = np.asarray(ir_labels, np.int64).reshape(-1)
  num_classes = int(max(vis.max(initial=-1), ir.max(initial=-1))) + 1
  return vis, ir, num_classes


def _class_index(labels: np.ndarray, num_classes: int):
  """(order, start, count): class c's indices are order[start[c]:start[c] + count[c]]."""
  order = np.argsort(labels, kind="stable")
  count = np.bincount(labels, minlength=num_classes)
  start = np.concatenate([[0], np.cumsum(count)[:-1]])
  return order, start, count


def _describe(classes: Sequence[int], limit: int = 20) -> str:
  shown = ", ".join(str(int(c)) for c in classes[:limit])
  more = f" and {len(classes) - limit} more" if len(classes) > limit else ""
  return shown + more


class PairedIdentitySampler:
  """Maps a step number to the visible and infrared images of this host's batch.

  Attributes:
    num_classes: training identities.
    identities: P, the global number of identities per step.
    instances: K, images per modality per identity.
    per_host: n = P*K/H, the rows of each modality in this host's batch.
  """

  def __init__(self, train_set_or_label_arrays, identities: int, instances: int,
               seed: int, host_id: int = 0, num_hosts: int = 1):
    vis, ir, num_classes = _label_arrays(train_set_or_label_arrays)
    p, k, h, hosts = int(identities), int(instances), int(host_id), int(num_hosts)
    if p < 1 or k < 1:
      raise ValueError(f"batch.identities={p} and batch.instances={k} must both be >= 1.")
    if hosts < 1 or not 0 <= h < hosts:
      raise ValueError(f"host_id={h} must be in [0, num_hosts={hosts}).")
    if p % hosts:
      raise ValueError(
          f"batch.identities={p} is not divisible by the {hosts} hosts (each host "
          "draws its own identities): set --config.batch.identities to a multiple "
          f"of {hosts}.")
    if int(seed) < 0:
      raise ValueError(f"seed={seed} must be >= 0.")
    for name, labels in (("visible", vis), ("infrared", ir)):
      bad = labels[(labels < 0) | (labels >= num_classes)]
      if bad.size:
        raise ValueError(f"{name} labels {_describe(np.unique(bad))} are outside "
                         f"0..{num_classes - 1} (num_classes={num_classes}).")
    self._vis = _class_index(vis, num_classes)
    self._ir = _class_index(ir, num_classes)
    for name, (_, _, count) in (("visible", self._vis), ("infrared", self._ir)):
      empty = np.flatnonzero(count == 0)
      if empty.size:
        raise ValueError(
            f"Training classes {_describe(empty)} have no {name} image; every class "
            "needs at least one image of each modality for paired sampling. Check "
            "the dataset reader (or the train split) that produced these records.")
    if p > num_classes:
      raise ValueError(
          f"batch.identities={p} is larger than the {num_classes} training "
          f"identities: set --config.batch.identities to at most {num_classes}.")
    self.num_classes = num_classes
    self.identities, self.instances = p, k
    self.seed, self.host_id, self.num_hosts = int(seed), h, hosts
    self.per_host = p * k // hosts

  def global_indices(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole step's draw, (visible_idx, infrared_idx, labels), each (P*K,)."""
    if int(step) < 0:
      raise ValueError(f"step={step} must be >= 0.")
    rng = np.random.default_rng([_SAMPLER_STREAM, self.seed, int(step)])
    p, k = self.identities, self.instances
    ids = rng.choice(self.num_classes, size=p, replace=False)
    picks = []
    for order, start, count in (self._vis, self._ir):
      offset = rng.integers(0, count[ids][:, None], size=(p, k))
      picks.append(order[start[ids][:, None] + offset].reshape(-1))
    labels = np.repeat(ids, k).astype(np.int32)
    return picks[0].astype(np.int64), picks[1].astype(np.int64), labels

  def indices(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This host's rows of step `step`: (visible_idx, infrared_idx, labels), each (n,).

    Indices point into train_set.visible / train_set.infrared. Rows are
    grouped by identity (K contiguous rows each); the same identity order and
    labels hold for both modalities.
    """
    vis, ir, labels = self.global_indices(step)
    rows = slice(self.host_id * self.per_host, (self.host_id + 1) * self.per_host)
    return vis[rows], ir[rows], labels[rows]
