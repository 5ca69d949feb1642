"""Batched feature extraction for evaluation: images in, L2-normalised features out.

The embedding function takes the weights as an argument and is compiled once
per modality for one fixed batch shape (the last batch is padded and its
padded rows dropped), so a whole training run, every periodic evaluation
included, costs one compilation per modality. Images travel to the device as
uint8 and are normalised there. They are decoded by a thread pool (PIL
releases the GIL) while the device embeds the previous batch; with
`cache_images` each file is decoded once and kept (uint8, H*W*3 bytes an
image: about 1.4 GB for SYSU-MM01's test set at 288x144), so later
evaluations read memory, not files. Images are the files at the given paths,
or, with an `image_source` (the prepared images of `--config.data.source=tfds`),
that store's images of those paths. No TensorFlow: this runs where only JAX
is installed.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vireid_jax.data import images as images_lib
from vireid_jax.data.image_store import EncodedImages
from vireid_jax.models import inputs

# (weights, float32 NHWC ImageNet-normalised images, modality) -> (N, D) features.
EmbedFn = Callable[[Any, jax.Array, int], jax.Array]
# (paths, modality, weights) -> float32 (N, D) L2-normalised features.
Extractor = Callable[..., np.ndarray]
# Batches decoded ahead of the one being embedded.
_PREFETCH = 2


def embed_pixels(embed_fn: EmbedFn, weights: Any, pixels: jax.Array, modality: Any,
                 flip: bool = False) -> jax.Array:
  """uint8 NHWC pixels -> float32 (N, D) L2-normalised features: what the evaluation computes.

  Shared by the extractor below and the exported model (`tools.export`), so a
  deployed file computes what the evaluation measured. `modality` is passed to
  `embed_fn` as it is (a static int here; the exporter's may be traced).
  """
  x = inputs.normalize(pixels)
  e = embed_fn(weights, x, modality).astype(jnp.float32)
  if flip:
    e = 0.5 * (e + embed_fn(weights, x[:, :, ::-1, :], modality).astype(jnp.float32))
  norm = jnp.sqrt(jnp.sum(e * e, axis=1, keepdims=True))
  return e / jnp.maximum(norm, 1e-12)


def make_extractor(embed_fn: EmbedFn, image_size: tuple[int, int], batch_size: int, *,
                   flip: bool = False, mesh: jax.sharding.Mesh | None = None,
                   num_threads: int = 8, image_source: EncodedImages | None = None,
                   cache_images: bool = False) -> Extractor:
  """Returns `extract(paths, modality, weights=None) -> float32 (N, D)` L2-normalised features.

  Args:
    embed_fn: (weights, float32 NHWC ImageNet-normalised images, modality) ->
      (N, D) features; a pure function, `modality` a static int. `weights` is
      what `extract` is given (any pytree, None included): new weights of the
      same shapes reuse the compiled function.
    image_size: (height, width) images are resized to.
    batch_size: images per device call (the global batch when sharded).
    flip: average the embeddings of each image and its horizontal mirror
      (then L2-normalise), the usual test-time augmentation.
    mesh: optional 1-D mesh with axis "data": batches are split over it, the
      weights replicated on it.
    num_threads: image decoding threads.
    image_source: where pixels come from: None reads the files at the paths;
      an `EncodedImages` (`datasets.test_image_source`) gives its images of them.
    cache_images: keep every decoded image for later calls (evaluations
      during training read the same test images each time).
  """
  height, width = (int(s) for s in image_size)
  batch_size = int(batch_size)
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size}: must be >= 1.")
  sharding = replicated = None
  if mesh is not None:
    if "data" not in mesh.axis_names:
      raise ValueError(f"The evaluation mesh needs an axis named 'data', got axes {mesh.axis_names}.")
    num_shards = mesh.shape["data"]
    if batch_size % num_shards:
      raise ValueError(f"Evaluation batch_size={batch_size} is not a multiple of the {num_shards} "
                       "devices of the mesh: set --config.eval.batch_size to a multiple of "
                       f"{num_shards}.")
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  compiled = {}
  cache: dict[str, np.ndarray] = {}

  def embed(modality: int):
    if modality not in compiled:
      def run(weights, pixels):
        return embed_pixels(embed_fn, weights, pixels, modality, flip)
      kwargs = ({} if sharding is None else
                {"in_shardings": (replicated, sharding), "out_shardings": sharding})
      compiled[modality] = jax.jit(run, **kwargs)
    return compiled[modality]

  def load(path: str) -> np.ndarray:
    image = cache.get(path)
    if image is None:
      if image_source is not None:
        image = image_source.load(path, (height, width))
      else:
        image = images_lib.load_image(path, (height, width))
      if cache_images:
        cache[path] = image
    return image

  def extract(paths: Sequence[str], modality: int, weights: Any = None) -> np.ndarray:
    paths = list(paths)
    fn = embed(int(modality))
    if replicated is not None:
      weights = jax.device_put(weights, replicated)
    shape = jax.ShapeDtypeStruct((batch_size, height, width, 3), jnp.uint8)
    if not paths:
      dim = jax.eval_shape(fn, weights, shape).shape[1]
      return np.zeros((0, dim), np.float32)
    starts = list(range(0, len(paths), batch_size))
    with concurrent.futures.ThreadPoolExecutor(max(1, int(num_threads))) as pool:
      def submit(i):
        return [pool.submit(load, p) for p in paths[starts[i]:starts[i] + batch_size]]

      pending = [submit(i) for i in range(min(_PREFETCH, len(starts)))]
      outputs, previous = [], None
      for i in range(len(starts)):
        futures = pending.pop(0)
        batch = np.zeros(shape.shape, np.uint8)    # padded rows are dropped
        for j, f in enumerate(futures):
          batch[j] = f.result()
        if i + _PREFETCH < len(starts):
          pending.append(submit(i + _PREFETCH))
        x = batch if sharding is None else jax.device_put(batch, sharding)
        current = (fn(weights, x), len(futures))   # dispatched asynchronously
        if previous is not None:                   # fetch the last batch while this one runs
          outputs.append(np.asarray(previous[0])[:previous[1]])
        previous = current
      outputs.append(np.asarray(previous[0])[:previous[1]])
    return np.concatenate(outputs).astype(np.float32, copy=False)

  return extract
