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
