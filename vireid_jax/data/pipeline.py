"""tf.data training input: paired batches, decoded, resized and augmented on the host.

Step s of the stream is a pure function of (seed, s): the sampler's draw comes
from (seed, s) and every image's augmentation from (seed, s, its row in the
GLOBAL batch), through TF stateless random ops. So

  * resuming at step s (start_step=s) gives the batches of an uninterrupted run,
    with no iterator state in the checkpoint;
  * the hosts of a multi-host run together produce exactly the single-host
    batch, augmentations included;
  * data.cache_decoded=True gives the same batches as decoding every time.

Images leave as uint8 (cheap host->device copy); the ImageNet normalisation
happens on the device in the train step.

Augmentations, each one a config switch (0 / False disables):
  1. data.pad: zero-pad `pad` pixels on each side, crop back at a random
     offset (AGW: Pad(10) + RandomCrop).
  2. data.flip: horizontal flip with probability 0.5.
  3. CAJ's channel augmentations (`channel_augment.py`): data.random_erasing,
     data.channel_augment (infrared images) and data.channel_exchange_view (a
     second, channel-exchanged view of every visible image, under the batch
     key "visible_exchanged"). CAJ applies them to normalised images, so they
     are drawn here (as int32 rows "<view>_ops", one per image, from the image's
     key) and applied on the device after the normalisation
     (`channel_augment.apply_ops`, in the train step).
Without 3., batches hold only "visible", "infrared" and their labels.

Bad image files: TF's decode errors do not say which file failed, so the
iterator catches them, re-decodes the failing step's files one by one and
raises `BadImageError` naming the file (FileNotFoundError for a missing one).

TensorFlow is imported lazily (and kept off the GPU): the model, losses and
train step never need it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import numpy as np
from absl import logging

from vireid_jax.data import channel_augment
from vireid_jax.data.images import BadImageError
from vireid_jax.data.records import TrainSet
from vireid_jax.data.sampler import PairedIdentitySampler
from vireid_jax.data.tensorflow_setup import import_tf

# Layout of the per-image uniform draws of the TF ops (pad/crop and flip).
_U_FLIP, _U_CROP_Y, _U_CROP_X = range(3)
NUM_UNIFORMS = 3

# Mixed into the augmentation seeds (the sampler uses its own stream).
_AUGMENT_STREAM = 0xA06E27

_HOW_TO_FIX = ("The file is empty, truncated or not an image: re-copy it from the "
               "dataset archive, or delete it and run `python -m vireid_jax.data.check`.")


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
  """Static augmentation settings; probabilities of 0 remove the op from the graph."""
  pad: int = 0
  flip_prob: float = 0.0
  channel_prob: float = 0.0
  erase_prob: float = 0.0
  exchange_view: bool = False

  @property
  def device_ops(self) -> bool:
    """Whether batches carry CAJ's per-image operations ("<view>_ops")."""
    return self.channel_prob > 0 or self.erase_prob > 0 or self.exchange_view

  @classmethod
  def from_config(cls, data_cfg) -> AugmentSpec:
    spec = cls(pad=int(data_cfg.pad), flip_prob=0.5 if data_cfg.flip else 0.0,
               channel_prob=float(data_cfg.channel_augment),
               erase_prob=float(data_cfg.random_erasing),
               exchange_view=bool(data_cfg.get("channel_exchange_view", False)))
    if spec.pad < 0:
      raise ValueError(f"data.pad={data_cfg.pad} must be >= 0 (0 disables pad-and-crop).")
    for key, value in (("data.channel_augment", spec.channel_prob),
                       ("data.random_erasing", spec.erase_prob)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key}={value} is a probability: give a value in [0, 1] (0 disables).")
    return spec


def image_keys(seed: int, step: int, num_rows: int) -> np.ndarray:
  """Stateless-RNG seeds (num_rows, 2) int64 for the rows of a GLOBAL step batch.

  Row r < P*K is visible row r, row P*K + r infrared row r, row 2*P*K + r the
  exchanged view of visible row r; a pure function of (seed, step, row) (and
  asking for more rows leaves the first ones unchanged).
  """
  state = np.random.SeedSequence([_AUGMENT_STREAM, int(seed), int(step)]).generate_state(
      2 * num_rows, np.uint32)
  return state.reshape(num_rows, 2).astype(np.int64)


# ----------------------------------------------------------------------------
# Per-image TF ops (pure functions of their inputs).

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode(contents):
  """Encoded JPEG/PNG/BMP/GIF bytes -> uint8 (h, w, 3) at the file's size.

  Same pixels as `images.load_image` (PIL), which evaluation uses, for every
  mode: see `decode_png` for 16-bit and transparent PNGs.
  """
  tf = import_tf()
  is_png = tf.equal(tf.strings.substr(contents, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
  return tf.cond(
      tf.io.is_jpeg(contents),
      lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
      lambda: tf.cond(
          is_png, lambda: decode_png(contents),
          lambda: tf.io.decode_image(contents, channels=3, expand_animations=False,
                                     dtype=tf.uint8)))


def decode_png(contents):
  """PNG -> uint8 (h, w, 3) as `images.to_rgb` converts it.

  TF alone would divide 16-bit greys by 257 and drop alpha; PIL (evaluation)
  stretches 16-bit greys by the image maximum (when above 255) and lays
  transparent pixels over black. Bit depth and colour type are bytes 24 and 25
  of the file (the IHDR chunk).
  """
  tf = import_tf()
  header = tf.io.decode_raw(tf.strings.substr(contents, 24, 2), tf.uint8)
  depth, colour = header[0], header[1]

  def grey16():
    x = tf.cast(tf.io.decode_png(contents, channels=1, dtype=tf.uint16), tf.float64)
    top = tf.reduce_max(x)
    x = x * tf.where(top > 255.0, 255.0 / top, tf.constant(1.0, tf.float64))
    return tf.image.grayscale_to_rgb(tf.cast(tf.clip_by_value(x, 0.0, 255.0), tf.uint8))

  def over_black():   # PIL's alpha_composite onto opaque black: round(value * alpha / 255)
    x = tf.cast(tf.io.decode_png(contents, channels=4), tf.int32)
    return tf.cast((x[..., :3] * x[..., 3:] + 127) // 255, tf.uint8)

  has_alpha = (colour == 3) | (colour == 4) | (colour == 6)   # palette (maybe tRNS), LA, RGBA
  return tf.case([(tf.logical_and(depth == 16, colour == 0), grey16), (has_alpha, over_black)],
                 default=lambda: tf.io.decode_png(contents, channels=3))


def decode_and_resize(contents, image_size: Sequence[int]):
  """Encoded JPEG/PNG/BMP/GIF bytes -> uint8 (H, W, 3), Lanczos-3 with antialiasing.

  1-channel (grayscale / infrared) files come out with 3 equal channels.
  JPEGs use the accurate integer DCT, which decodes exactly like PIL (TF's
  default fast DCT is ~0.5 grey level darker on average). The resize is TF's
  closest match to PIL's LANCZOS, which evaluation (`images.load_image`) and
  AGW / CAJ use: on the synthetic data, mean |difference| 0.2 grey levels,
  > 1 level for ~1e-4 of the values (PIL rounds and clips between its two
  passes, so Lanczos overshoots at hard edges differ; `python -m benchmarks.resize_filters`);
  images already at the target size are not resampled.
  """
  tf = import_tf()
  height, width = int(image_size[0]), int(image_size[1])
  image = decode(contents)
  shape = tf.shape(image)

  def resize():
    out = tf.image.resize(image, (height, width), method="lanczos3", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

  same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
  image = tf.cond(same, lambda: image, resize)
  image.set_shape((height, width, 3))
  return image


def augment_image(image, key, spec: AugmentSpec):
  """Pads/crops and flips one uint8 (H, W, 3) image; deterministic in `key` ((2,) int64).

  Also the test hook: a flip_prob of 1.0 forces the flip.
  """
  tf = import_tf()
  image = tf.convert_to_tensor(image, tf.uint8)
  static_shape = image.shape
  u = tf.random.stateless_uniform([NUM_UNIFORMS], seed=tf.cast(key, tf.int64))
  if spec.pad > 0:
    p = int(spec.pad)
    shape = tf.shape(image)
    padded = tf.pad(image, [[p, p], [p, p], [0, 0]])
    oy = tf.minimum(tf.cast(u[_U_CROP_Y] * (2 * p + 1), tf.int32), 2 * p)
    ox = tf.minimum(tf.cast(u[_U_CROP_X] * (2 * p + 1), tf.int32), 2 * p)
    image = tf.slice(padded, tf.stack([oy, ox, 0]), shape)
  if spec.flip_prob > 0:
    image = tf.cond(u[_U_FLIP] < spec.flip_prob,
                    lambda: tf.reverse(image, axis=[1]), lambda: image)
  image.set_shape(static_shape)
  return image


def step_views(sampler: PairedIdentitySampler, spec: AugmentSpec, host_id: int = 0):
  """(view names, (global key rows, channel_augment view) per view) of this host's step rows.

  Views in batch order: visible, [exchanged visible,] infrared; each holds this
  host's n = P*K/hosts rows.
  """
  n, global_n = sampler.per_host, sampler.identities * sampler.instances
  rows = np.arange(host_id * n, (host_id + 1) * n)
  views = [("visible", rows, channel_augment.VISIBLE)]
  if spec.exchange_view:
    views.append(("visible_exchanged", 2 * global_n + rows, channel_augment.EXCHANGED))
  views.append(("infrared", global_n + rows, channel_augment.INFRARED))
  return views


# ----------------------------------------------------------------------------
# Bad-file reporting.

def _find_bad_file(paths: Sequence[str], error: Exception, store=None) -> Exception:
  """Decodes `paths` one by one; returns an error naming the first that fails.

  `store`: the train set's `EncodedImages` (data.source=tfds), read instead of the files.
  """
  tf = import_tf()
  for path in dict.fromkeys(paths):      # unique, in order
    try:
      decode(tf.io.read_file(path) if store is None else store.encoded([path])[0])
    except tf.errors.NotFoundError:
      return FileNotFoundError(f"Training image {path!r} does not exist; the dataset "
                               "changed after its records were read.")
    except tf.errors.OpError as e:
      where = "" if store is None else f" (prepared record in {store.origin})"
      return BadImageError(f"Cannot decode image {path!r}{where} ({e.message.strip()}). "
                           f"{_HOW_TO_FIX}")
  return RuntimeError(f"The input pipeline failed on one of {len(paths)} files "
                      f"(each decodes on its own), first {paths[0]!r}: {error}")


def decode_files(paths: Sequence[str], image_size: Sequence[int],
                 num_parallel_calls: int = -1, store=None) -> np.ndarray:
  """Decodes and resizes every file once: uint8 (N, H, W, 3), same ops as the stream.

  `store`: an `EncodedImages` (data.source=tfds) whose bytes are decoded
  instead of the files. Memory is N*H*W*3 bytes: ~4.2 GB for SYSU-MM01's
  ~34k training images at 288x144, ~0.5 GB for a RegDB split.
  """
  tf = import_tf()
  paths = [str(p) for p in paths]
  height, width = int(image_size[0]), int(image_size[1])
  out = np.empty((len(paths), height, width, 3), np.uint8)
  if not paths:
    return out
  chunk = 64
  if store is None:
    ds = tf.data.Dataset.from_tensor_slices(np.array(paths, dtype=object)).map(tf.io.read_file)
  else:
    ds = tf.data.Dataset.from_tensor_slices(store.encoded(paths))
  load = tf.autograph.experimental.do_not_convert(
      lambda contents: decode_and_resize(contents, (height, width)))
  ds = ds.map(load, num_parallel_calls=_parallel_calls(tf, num_parallel_calls),
              deterministic=True)
  it = iter(ds.batch(chunk).prefetch(1).as_numpy_iterator())
  for start in range(0, len(paths), chunk):
    try:
      block = next(it)
    except tf.errors.OpError as e:
      raise _find_bad_file(paths[start:start + chunk], e, store) from e
    out[start:start + len(block)] = block
  return out


# ----------------------------------------------------------------------------
# The stream.

def _parallel_calls(tf, value) -> int:
  value = int(value)
  if value == -1:
    return tf.data.AUTOTUNE
  if value < 1:
    raise ValueError(f"data.num_parallel_calls={value}: use -1 (autotune) or a positive count.")
  return value


class _TrainIterator:
  """The numpy batch iterator; turns TF decode errors into errors naming the file."""

  def __init__(self, dataset, start_step: int, step_paths, errors, store=None):
    self._it = iter(dataset.as_numpy_iterator())
    self._step = int(start_step)
    self._step_paths = step_paths
    self._errors = errors
    self._store = store

  @property
  def next_step(self) -> int:
    """The step number of the next batch."""
    return self._step

  def __iter__(self) -> _TrainIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    try:
      batch = next(self._it)
    except self._errors.OpError as e:
      raise _find_bad_file(self._step_paths(self._step), e, self._store) from e
    self._step += 1
    return batch


def make_train_iterator(train_set: TrainSet, data_cfg, batch_cfg, *, seed: int,
                        start_step: int = 0, num_steps: int | None = None,
                        host_id: int = 0, num_hosts: int = 1,
                        num_threads: int | None = None) -> Iterator[dict[str, Any]]:
  """This host's training batches for steps start_step, start_step + 1, ...

  Yields numpy dicts {"visible", "infrared": uint8 (n, H, W, 3),
  "visible_labels", "infrared_labels": int32 (n,)} with n = P*K/num_hosts,
  rows grouped by identity, the same identity order in both modalities; with
  CAJ's augmentations also "visible_exchanged" (n, H, W, 3), same labels as
  "visible", and "<view>_ops" int32 (n, 5) per view (`channel_augment`).
  Endless unless num_steps is given. num_threads sets a private tf.data
  thread pool (benchmarks); None uses TF's shared pool. Pixels come from the
  files at the records' paths, or from `train_set.images` (data.source=tfds,
  images prepared at data.image_size): the same batches either way.
  """
  tf = import_tf()
  sampler = PairedIdentitySampler(train_set, batch_cfg.identities, batch_cfg.instances,
                                  seed, host_id=host_id, num_hosts=num_hosts)
  spec = AugmentSpec.from_config(data_cfg)
  size = tuple(int(s) for s in data_cfg.image_size)
  if len(size) != 2 or min(size) < 1:
    raise ValueError(f"data.image_size={tuple(data_cfg.image_size)}: give (height, width).")
  parallel = _parallel_calls(tf, data_cfg.num_parallel_calls)
  if int(start_step) < 0 or (num_steps is not None and int(num_steps) < 0):
    raise ValueError(f"start_step={start_step} and num_steps={num_steps} must be >= 0.")

  n, global_n = sampler.per_host, sampler.identities * sampler.instances
  num_visible = len(train_set.visible)
  paths = [r.path for r in train_set.visible] + [r.path for r in train_set.infrared]
  views = step_views(sampler, spec, host_id)
  names = [name for name, _, _ in views]
  key_rows = np.concatenate([rows for _, rows, _ in views])
  op_views = np.concatenate([np.full(n, view) for _, _, view in views])
  total = len(views) * n                           # images per host and step
  num_keys = 3 if spec.exchange_view else 2        # global key blocks of P*K rows

  def step_files(step) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vis, ir, labels = sampler.indices(int(step))
    files = np.concatenate([vis] * (len(views) - 1) + [num_visible + ir]).astype(np.int64)
    keys = image_keys(seed, int(step), num_keys * global_n)[key_rows]
    if spec.device_ops:
      ops = channel_augment.step_ops(seed, int(step), key_rows, op_views, size,
                                     spec.erase_prob, spec.channel_prob)
    else:
      ops = np.zeros((total, channel_augment.NUM_FIELDS), np.int32)
    return files, np.tile(labels, len(views)), keys, ops

  def step_paths(step) -> list[str]:
    return [paths[i] for i in step_files(step)[0]]

  if num_steps is None:
    steps = tf.data.Dataset.counter(int(start_step))
  else:
    steps = tf.data.Dataset.range(int(start_step), int(start_step) + int(num_steps))

  store = train_set.images
  if store is not None and store.image_size != size:
    raise ValueError(f"The training images of {store.origin} are prepared at {store.image_size}, "
                     f"not at data.image_size={size}: prepare them at that size.")
  if data_cfg.cache_decoded:
    logging.info("Decoding %d training images into memory (%.2f GB, data.cache_decoded=True)",
                 len(paths), len(paths) * size[0] * size[1] * 3 / 1e9)
    cache = decode_files(paths, size, data_cfg.num_parallel_calls, store)

    def step_elements(step):
      files, labels, keys, ops = step_files(step)
      return cache[files], labels, keys, ops

    def load(image, label, key, ops):
      return augment_image(image, key, spec), label, ops
    first_type, first_shape = tf.uint8, (total,) + size + (3,)
  elif store is not None:
    encoded = store.encoded(paths)

    def step_elements(step):
      files, labels, keys, ops = step_files(step)
      return encoded[files], labels, keys, ops

    def load(contents, label, key, ops):
      return augment_image(decode_and_resize(contents, size), key, spec), label, ops
    first_type, first_shape = tf.string, (total,)
  else:
    path_table = tf.constant(np.array(paths, dtype=object), tf.string)
    step_elements = step_files

    def load(file_index, label, key, ops):
      image = decode_and_resize(tf.io.read_file(tf.gather(path_table, file_index)), size)
      return augment_image(image, key, spec), label, ops
    first_type, first_shape = tf.int64, (total,)

  def draw(step):
    out = tf.numpy_function(step_elements, [step],
                            [first_type, tf.int32, tf.int64, tf.int32], stateful=False)
    shapes = (first_shape, (total,), (total, 2), (total, channel_augment.NUM_FIELDS))
    return tuple(tf.ensure_shape(t, s) for t, s in zip(out, shapes))

  def split(images, labels, ops):
    out = {}
    for i, name in enumerate(names):
      rows = slice(i * n, (i + 1) * n)
      out[name] = images[rows]
      if spec.device_ops:
        out[f"{name}_ops"] = ops[rows]
    out["visible_labels"], out["infrared_labels"] = labels[:n], labels[-n:]
    return out

  # Plain Python control flow only (static spec); AutoGraph would only add noise.
  plain = tf.autograph.experimental.do_not_convert
  ds = steps.map(plain(draw)).unbatch()
  ds = ds.map(plain(load), num_parallel_calls=parallel, deterministic=True)
  ds = ds.batch(total, drop_remainder=True).map(plain(split)).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  if num_threads:
    options.threading.private_threadpool_size = int(num_threads)
  ds = ds.with_options(options)
  return _TrainIterator(ds, start_step, step_paths, tf.errors, store)
