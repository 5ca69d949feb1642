"""Random batches with the real batch structure, for benchmarks and smoke runs.

No files, no TensorFlow: the train step can be timed without the input
pipeline (data.name=fake). Labels follow the sampler's rules (P identities
without replacement, K rows each, host h keeps identities [h*P/H, (h+1)*P/H)).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def fake_batch(rng_or_seed, identities: int, instances: int, image_size: Sequence[int],
               num_classes: int, host_id: int = 0, num_hosts: int = 1) -> dict[str, np.ndarray]:
  """One host batch: {"visible", "infrared": uint8 (n, H, W, 3), "*_labels": int32 (n,)}.

  The labels are the first draw from the generator: the same seed on every
  host gives the hosts disjoint identities, as with the real sampler.
  """
  rng = np.random.default_rng(rng_or_seed)
  p, k, hosts, h = int(identities), int(instances), int(num_hosts), int(host_id)
  if p < 1 or k < 1:
    raise ValueError(f"batch.identities={p} and batch.instances={k} must both be >= 1.")
  if p > int(num_classes):
    raise ValueError(f"batch.identities={p} is larger than the {num_classes} classes: set "
                     f"--config.batch.identities (or data.fake_num_classes) accordingly.")
  if hosts < 1 or not 0 <= h < hosts:
    raise ValueError(f"host_id={h} must be in [0, num_hosts={hosts}).")
  if p % hosts:
    raise ValueError(f"batch.identities={p} is not divisible by the {hosts} hosts.")
  height, width = int(image_size[0]), int(image_size[1])
  ids = rng.choice(int(num_classes), size=p, replace=False)
  labels = np.repeat(ids, k).astype(np.int32)
  n = p * k // hosts
  labels = labels[h * n:(h + 1) * n]
  shape = (n, height, width, 3)
  return {"visible": rng.integers(0, 256, shape, dtype=np.uint8),
          "infrared": rng.integers(0, 256, shape, dtype=np.uint8),
          "visible_labels": labels, "infrared_labels": labels.copy()}


class FakeIterator:
  """Endless (or num_steps) fake batches, recycling `num_cached` pre-made ones."""

  def __init__(self, seed: int, identities: int, instances: int, image_size: Sequence[int],
               num_classes: int, host_id: int = 0, num_hosts: int = 1, num_cached: int = 4,
               num_steps: int | None = None):
    if int(num_cached) < 1:
      raise ValueError(f"num_cached={num_cached} must be >= 1.")
    rng = np.random.default_rng(int(seed))   # same on every host: disjoint identities
    self._batches = [fake_batch(rng, identities, instances, image_size, num_classes,
                                host_id=host_id, num_hosts=num_hosts)
                     for _ in range(int(num_cached))]
    self._num_steps = num_steps
    self._step = 0

  def __iter__(self) -> FakeIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._num_steps is not None and self._step >= self._num_steps:
      raise StopIteration
    batch = self._batches[self._step % len(self._batches)]
    self._step += 1
    return batch
