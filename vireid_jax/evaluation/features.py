"""Batched feature extraction for evaluation: images in, L2-normalised features out.

The embedding function is compiled once per modality for one fixed batch shape
(the last batch is padded and its padded rows dropped), so a whole test set
costs one compilation per modality whatever its size. Images are decoded by a
thread pool (PIL releases the GIL) while the device embeds the previous batch.
Images are the files at the given paths, or, with an `image_source` (the
prepared images of `--config.data.source=tfds`), that store's images of those
paths. No TensorFlow: this runs where only JAX is installed.
"""

from __future__ import annotations

import concurrent.futures
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vireid_jax.data import images as images_lib
from vireid_jax.data.image_store import EncodedImages

EmbedFn = Callable[[jax.Array, int], jax.Array]
# Batches decoded ahead of the one being embedded.
_PREFETCH = 2


def make_extractor(embed_fn: EmbedFn, image_size: tuple[int, int], batch_size: int, *,
                   flip: bool = False, mesh: jax.sharding.Mesh | None = None,
                   num_threads: int = 8, image_source: EncodedImages | None = None
                   ) -> Callable[[Sequence[str], int], np.ndarray]:
  """Returns `extract(paths, modality) -> float32 (N, D)` L2-normalised features.

  Args:
    embed_fn: (float32 NHWC ImageNet-normalised images, modality) -> (N, D)
      features; a pure function of the images, `modality` is a static int.
    image_size: (height, width) images are resized to.
    batch_size: images per device call (the global batch when sharded).
    flip: average the embeddings of each image and its horizontal mirror
      (then L2-normalise), the usual test-time augmentation.
    mesh: optional 1-D mesh with axis "data": batches are split over it.
    num_threads: image decoding threads.
    image_source: where pixels come from: None reads the files at the paths;
      an `EncodedImages` (`datasets.test_image_source`) gives its images of them.
  """
  height, width = (int(s) for s in image_size)
  batch_size = int(batch_size)
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size}: must be >= 1.")
  sharding = None
  if mesh is not None:
    if "data" not in mesh.axis_names:
      raise ValueError(f"The evaluation mesh needs an axis named 'data', got axes {mesh.axis_names}.")
    num_shards = mesh.shape["data"]
    if batch_size % num_shards:
      raise ValueError(f"Evaluation batch_size={batch_size} is not a multiple of the {num_shards} "
                       "devices of the mesh: set --config.eval.batch_size to a multiple of "
                       f"{num_shards}.")
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  compiled = {}

  def embed(modality: int):
    if modality not in compiled:
      def run(x):
        e = embed_fn(x, modality).astype(jnp.float32)
        if flip:
          e = 0.5 * (e + embed_fn(x[:, :, ::-1, :], modality).astype(jnp.float32))
        norm = jnp.sqrt(jnp.sum(e * e, axis=1, keepdims=True))
        return e / jnp.maximum(norm, 1e-12)
      kwargs = {} if sharding is None else {"in_shardings": sharding, "out_shardings": sharding}
      compiled[modality] = jax.jit(run, **kwargs)
    return compiled[modality]

  def load(path: str) -> np.ndarray:
    if image_source is not None:
      return images_lib.normalize(image_source.load(path, (height, width)))
    return images_lib.normalize(images_lib.load_image(path, (height, width)))

  def extract(paths: Sequence[str], modality: int) -> np.ndarray:
    paths = list(paths)
    fn = embed(int(modality))
    shape = jax.ShapeDtypeStruct((batch_size, height, width, 3), jnp.float32)
    if not paths:
      dim = jax.eval_shape(fn, shape).shape[1]
      return np.zeros((0, dim), np.float32)
    starts = list(range(0, len(paths), batch_size))
    with concurrent.futures.ThreadPoolExecutor(max(1, int(num_threads))) as pool:
      def submit(i):
        return [pool.submit(load, p) for p in paths[starts[i]:starts[i] + batch_size]]

      pending = [submit(i) for i in range(min(_PREFETCH, len(starts)))]
      outputs, previous = [], None
      for i in range(len(starts)):
        futures = pending.pop(0)
        batch = np.zeros(shape.shape, np.float32)  # padded rows stay zero and are dropped
        for j, f in enumerate(futures):
          batch[j] = f.result()
        if i + _PREFETCH < len(starts):
          pending.append(submit(i + _PREFETCH))
        x = batch if sharding is None else jax.device_put(batch, sharding)
        current = (fn(x), len(futures))            # dispatched asynchronously
        if previous is not None:                   # fetch the last batch while this one runs
          outputs.append(np.asarray(previous[0])[:previous[1]])
        previous = current
      outputs.append(np.asarray(previous[0])[:previous[1]])
    return np.concatenate(outputs).astype(np.float32, copy=False)

  return extract
