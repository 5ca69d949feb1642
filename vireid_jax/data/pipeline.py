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

Augmentations, in this order, each one a config switch (0 / False disables):
  1. data.pad: zero-pad `pad` pixels on each side, crop back at a random
     offset (AGW: Pad(10) + RandomCrop).
  2. data.flip: horizontal flip with probability 0.5.
  3. data.channel_augment (visible images only), probability p: CAJ-style
     channel augmentation, uniformly one of {replicate R, replicate G,
     replicate B, grayscale 0.2989 R + 0.587 G + 0.114 B} into all 3 channels.
  4. data.random_erasing, probability p: random erasing (Zhong et al.): area
     fraction U(0.02, 0.4), aspect ratio U(0.3, 1/0.3), filled with the ImageNet
     mean colour ERASE_FILL = (124, 116, 104), i.e. ~0 after normalisation.
     The first of ERASE_ATTEMPTS=10 candidate rectangles that fits is used
     (the original tries up to 100; the first fitting one has the same
     distribution, and all 10 miss with probability ~1e-13 at 288x144).
Channel augmentation runs before erasing (CAJ does the reverse) so that the
erased rectangle always holds exactly ERASE_FILL.

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

from vireid_jax.data.images import IMAGENET_MEAN, BadImageError
from vireid_jax.data.records import TrainSet
from vireid_jax.data.sampler import PairedIdentitySampler
from vireid_jax.data.tensorflow_setup import import_tf

ERASE_FILL = tuple(int(v) for v in np.round(IMAGENET_MEAN))   # (124, 116, 104)
ERASE_AREA = (0.02, 0.4)
ERASE_MIN_ASPECT = 0.3
ERASE_ATTEMPTS = 10
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

# Layout of the per-image uniform draws: fixed, so that switching one
# augmentation off leaves the randomness of the others unchanged.
_U_FLIP, _U_CROP_Y, _U_CROP_X, _U_CHANNEL, _U_CHANNEL_CHOICE, _U_ERASE = range(6)
_U_ERASE_RECT = 6                      # 4 * ERASE_ATTEMPTS uniforms from here
NUM_UNIFORMS = _U_ERASE_RECT + 4 * ERASE_ATTEMPTS

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

  @classmethod
  def from_config(cls, data_cfg) -> AugmentSpec:
    spec = cls(pad=int(data_cfg.pad), flip_prob=0.5 if data_cfg.flip else 0.0,
               channel_prob=float(data_cfg.channel_augment),
               erase_prob=float(data_cfg.random_erasing))
    if spec.pad < 0:
      raise ValueError(f"data.pad={data_cfg.pad} must be >= 0 (0 disables pad-and-crop).")
    for key, value in (("data.channel_augment", spec.channel_prob),
                       ("data.random_erasing", spec.erase_prob)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key}={value} is a probability: give a value in [0, 1] (0 disables).")
    return spec


def image_keys(seed: int, step: int, num_rows: int) -> np.ndarray:
  """Stateless-RNG seeds (num_rows, 2) int64 for the rows of a GLOBAL step batch.

  Row r < P*K is visible row r, row P*K + r infrared row r; a pure function of
  (seed, step, row).
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
  """Encoded JPEG/PNG/BMP/GIF bytes -> uint8 (H, W, 3), bilinear with antialiasing.

  1-channel (grayscale / infrared) files come out with 3 equal channels.
  JPEGs use the accurate integer DCT, which decodes exactly like PIL (TF's
  default fast DCT is ~0.5 grey level darker on average), and antialiased
  bilinear matches PIL's BILINEAR to within 1: training images then match
  the PIL-decoded evaluation images.
  """
  tf = import_tf()
  height, width = int(image_size[0]), int(image_size[1])
  image = decode(contents)
  shape = tf.shape(image)

  def resize():
    out = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

  same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
  image = tf.cond(same, lambda: image, resize)
  image.set_shape((height, width, 3))
  return image


def _channel_mix(image, choice):
  """Replicates channel `choice` (0 R, 1 G, 2 B, 3 grayscale) into all three.

  Written with slices and one broadcast: TF's CPU kernels for reductions,
  concatenations and stacks along a size-3 last axis are ~10x slower.
  """
  tf = import_tf()

  def gray():
    f = [tf.cast(image[..., c], tf.float32) * w for c, w in enumerate(GRAY_WEIGHTS)]
    return tf.cast(tf.clip_by_value(tf.round(f[0] + f[1] + f[2]), 0.0, 255.0), tf.uint8)

  branches = [lambda c=c: image[..., c] for c in range(3)] + [gray]
  one = tf.switch_case(choice, branches)
  return tf.broadcast_to(one[..., None], tf.shape(image))


def _erase(image, u):
  """Random erasing with the uniforms u (4 * ERASE_ATTEMPTS,).

  The rectangle is assembled with slices and concatenations, several times
  faster on CPU than a full-image masked select.
  """
  tf = import_tf()
  shape = tf.shape(image)
  h, w = shape[0], shape[1]
  hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
  a = ERASE_ATTEMPTS
  u_area, u_aspect, u_y, u_x = u[:a], u[a:2 * a], u[2 * a:3 * a], u[3 * a:4 * a]
  target = (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u_area) * hf * wf
  aspect = ERASE_MIN_ASPECT + (1.0 / ERASE_MIN_ASPECT - ERASE_MIN_ASPECT) * u_aspect
  eh = tf.round(tf.sqrt(target * aspect))
  ew = tf.round(tf.sqrt(target / aspect))
  fits = tf.logical_and(eh < hf, ew < wf)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  eh_i, ew_i = tf.cast(eh[first], tf.int32), tf.cast(ew[first], tf.int32)
  y0 = tf.minimum(tf.cast(u_y[first] * tf.cast(h - eh_i + 1, tf.float32), tf.int32), h - eh_i)
  x0 = tf.minimum(tf.cast(u_x[first] * tf.cast(w - ew_i + 1, tf.float32), tf.int32), w - ew_i)

  def erase():
    y1, x1 = y0 + eh_i, x0 + ew_i
    block = tf.broadcast_to(tf.constant(ERASE_FILL, tf.uint8), tf.stack([eh_i, ew_i, 3]))
    band = tf.concat([image[y0:y1, :x0], block, image[y0:y1, x1:]], axis=1)
    return tf.concat([image[:y0], band, image[y1:]], axis=0)

  return tf.cond(tf.reduce_any(fits), erase, lambda: image)


def augment_image(image, key, visible, spec: AugmentSpec):
  """Augments one uint8 (H, W, 3) image; deterministic in `key` ((2,) int64).

  `visible` (bool scalar) gates the channel augmentation. Also the test hook:
  spec probabilities of 1.0 force an op.
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
  if spec.channel_prob > 0:
    choice = tf.minimum(tf.cast(u[_U_CHANNEL_CHOICE] * 4.0, tf.int32), 3)
    apply = tf.logical_and(tf.cast(visible, tf.bool), u[_U_CHANNEL] < spec.channel_prob)
    image = tf.cond(apply, lambda: _channel_mix(image, choice), lambda: image)
  if spec.erase_prob > 0:
    image = tf.cond(u[_U_ERASE] < spec.erase_prob,
                    lambda: _erase(image, u[_U_ERASE_RECT:]), lambda: image)
  image.set_shape(static_shape)
  return image


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
  rows grouped by identity, the same identity order in both modalities.
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
  rows = np.arange(host_id * n, (host_id + 1) * n)
  key_rows = np.concatenate([rows, global_n + rows])
  is_visible = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])

  def step_files(step) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vis, ir, labels = sampler.indices(int(step))
    files = np.concatenate([vis, num_visible + ir]).astype(np.int64)
    keys = image_keys(seed, int(step), 2 * global_n)[key_rows]
    return files, np.concatenate([labels, labels]), is_visible, keys

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
      files, labels, visible, keys = step_files(step)
      return cache[files], labels, visible, keys

    def load(image, label, visible, key):
      return augment_image(image, key, visible, spec), label
    first_type, first_shape = tf.uint8, (2 * n,) + size + (3,)
  elif store is not None:
    encoded = store.encoded(paths)

    def step_elements(step):
      files, labels, visible, keys = step_files(step)
      return encoded[files], labels, visible, keys

    def load(contents, label, visible, key):
      return augment_image(decode_and_resize(contents, size), key, visible, spec), label
    first_type, first_shape = tf.string, (2 * n,)
  else:
    path_table = tf.constant(np.array(paths, dtype=object), tf.string)
    step_elements = step_files

    def load(file_index, label, visible, key):
      image = decode_and_resize(tf.io.read_file(tf.gather(path_table, file_index)), size)
      return augment_image(image, key, visible, spec), label
    first_type, first_shape = tf.int64, (2 * n,)

  def draw(step):
    out = tf.numpy_function(step_elements, [step],
                            [first_type, tf.int32, tf.bool, tf.int64], stateful=False)
    shapes = (first_shape, (2 * n,), (2 * n,), (2 * n, 2))
    return tuple(tf.ensure_shape(t, s) for t, s in zip(out, shapes))

  def split(images, labels):
    return {"visible": images[:n], "infrared": images[n:],
            "visible_labels": labels[:n], "infrared_labels": labels[n:]}

  # Plain Python control flow only (static spec); AutoGraph would only add noise.
  plain = tf.autograph.experimental.do_not_convert
  ds = steps.map(plain(draw)).unbatch()
  ds = ds.map(plain(load), num_parallel_calls=parallel, deterministic=True)
  ds = ds.batch(2 * n, drop_remainder=True).map(plain(split)).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  if num_threads:
    options.threading.private_threadpool_size = int(num_threads)
  ds = ds.with_options(options)
  return _TrainIterator(ds, start_step, step_paths, tf.errors, store)
