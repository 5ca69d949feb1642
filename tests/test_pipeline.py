"""The tf.data training pipeline: structure, determinism, resume, hosts, pad/crop and flip.

CAJ's channel augmentations (drawn here, applied on the device) are tested in test_caj.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from vireid_jax.config_defaults import base_config
from vireid_jax.data import images as images_lib
from vireid_jax.data import pipeline, sampler, tensorflow_setup
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet

tf = tensorflow_setup.import_tf()

SIZE = (16, 8)          # files are 20x10: every image really gets resized
NUM_IDS = 6


def smooth_image(rng, channels):
  """A 20x10 image with low-frequency content (resizing and JPEG behave as on photos)."""
  coarse = rng.integers(0, 256, (5, 3, channels)).astype(np.float32)
  big = np.asarray(tf.image.resize(coarse, (20, 10), "bilinear"))
  big = big + rng.normal(0, 8, big.shape)
  return np.clip(big, 0, 255).astype(np.uint8)


def write_dataset(root, num_ids=NUM_IDS) -> TrainSet:
  """Visible: RGB JPEG + RGB PNG per id; infrared: 1-channel BMP + 1-channel JPEG."""
  rng = np.random.default_rng(0)
  vis, ir = [], []
  for c in range(num_ids):
    for j, ext in enumerate(("jpg", "png")):
      path = os.path.join(root, f"v_{c}_{j}.{ext}")
      Image.fromarray(smooth_image(rng, 3), "RGB").save(path)
      vis.append(ImageRecord(path, c, 1, VISIBLE))
    for j, ext in enumerate(("bmp", "jpg")):
      path = os.path.join(root, f"i_{c}_{j}.{ext}")
      Image.fromarray(smooth_image(rng, 1)[..., 0], "L").save(path)
      ir.append(ImageRecord(path, c, 3, INFRARED))
  return TrainSet(tuple(vis), tuple(ir), num_ids, tuple(range(num_ids)))


@pytest.fixture(name="train_set", scope="module")
def fixture_train_set(tmp_path_factory):
  return write_dataset(str(tmp_path_factory.mktemp("pipeline_data")))


def make_cfg(pad=0, flip=False, channel=0.0, erase=0.0, exchange=False, cache=False, p=4, k=2):
  c = base_config()
  c.data.image_size = SIZE
  c.data.pad, c.data.flip = pad, flip
  c.data.channel_augment, c.data.random_erasing = channel, erase
  c.data.channel_exchange_view = exchange
  c.data.cache_decoded = cache
  c.data.num_parallel_calls = 2
  c.batch.identities, c.batch.instances = p, k
  return c


def run(train_set, c, seed=0, start_step=0, num_steps=3, **kw):
  return list(pipeline.make_train_iterator(train_set, c.data, c.batch, seed=seed,
                                           start_step=start_step, num_steps=num_steps, **kw))


def plain(path):
  """The reference for 'no augmentation': TF decode + antialiased Lanczos-3 resize."""
  return pipeline.decode_and_resize(tf.io.read_file(path), SIZE).numpy()


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


ALL_ON = dict(pad=2, flip=True, channel=0.5, erase=0.5, exchange=True)


# ----------------------------------------------------------------------------
# The stream.

def test_structure_and_labels_match_sampler(train_set):
  c = make_cfg(**ALL_ON)
  batches = run(train_set, c, seed=3)
  s = sampler.PairedIdentitySampler(train_set, 4, 2, seed=3)
  for step, b in enumerate(batches):
    # CAJ's erasing / channel operations travel as int32 rows, applied on the device.
    # CAJ's exchanged view is a third image array (its labels are the visible ones).
    assert set(b) == {"visible", "infrared", "visible_labels", "infrared_labels",
                      "visible_exchanged", "visible_ops", "infrared_ops",
                      "visible_exchanged_ops"}
    assert b["visible_ops"].shape == b["infrared_ops"].shape == (8, 5)
    assert b["visible_exchanged_ops"].shape == (8, 5) and b["visible_ops"].dtype == np.int32
    assert b["visible"].shape == b["infrared"].shape == b["visible_exchanged"].shape == (
        (8,) + SIZE + (3,))
    assert b["visible"].dtype == b["infrared"].dtype == np.uint8
    assert b["visible_labels"].dtype == b["infrared_labels"].dtype == np.int32
    labels = s.indices(step)[2]
    np.testing.assert_array_equal(b["visible_labels"], labels)
    np.testing.assert_array_equal(b["infrared_labels"], labels)


def test_no_augmentation_is_plain_resize(train_set):
  batches = run(train_set, make_cfg(), seed=1, num_steps=2)
  s = sampler.PairedIdentitySampler(train_set, 4, 2, seed=1)
  diffs = []
  for step, b in enumerate(batches):
    vis, ir, _ = s.indices(step)
    for row in range(8):
      for name, records, idx in (("visible", train_set.visible, vis),
                                 ("infrared", train_set.infrared, ir)):
        path = records[idx[row]].path
        got = b[name][row]
        np.testing.assert_array_equal(got, plain(path))
        # Close to PIL decoding + LANCZOS resize (evaluation, AGW, CAJ): PIL rounds between
        # its two passes, TF does not.
        pil = images_lib.load_image(path, SIZE).astype(np.int16)
        diff = np.abs(got.astype(np.int16) - pil)
        diffs.append(diff)
        assert diff.max() <= 3
      # 1-channel infrared files come out with 3 equal channels.
      assert (b["infrared"][row] == b["infrared"][row][..., :1]).all()
  diffs = np.concatenate([d.reshape(-1) for d in diffs])
  assert diffs.mean() < 0.5 and np.mean(diffs > 1) < 0.01


def test_deterministic_resumable_and_seeded(train_set):
  c = make_cfg(**ALL_ON)
  first = run(train_set, c, seed=5, num_steps=4)
  assert_batches_equal(first, run(train_set, c, seed=5, num_steps=4))
  # Resume at step 2: same batches as the uninterrupted stream.
  assert_batches_equal(first[2:], run(train_set, c, seed=5, start_step=2, num_steps=2))
  # Endless stream (num_steps=None) gives the same first batches.
  it = pipeline.make_train_iterator(train_set, c.data, c.batch, seed=5, start_step=1)
  assert_batches_equal(first[1:3], [next(it), next(it)])
  assert it.next_step == 3
  # Steps differ from each other, and another seed gives another stream.
  assert not np.array_equal(first[0]["visible"], first[1]["visible"])
  other = run(train_set, c, seed=6, num_steps=1)
  assert not np.array_equal(first[0]["visible"], other[0]["visible"])


def test_cache_decoded_gives_the_same_batches(train_set):
  batches = run(train_set, make_cfg(**ALL_ON), seed=2)
  assert_batches_equal(batches, run(train_set, make_cfg(cache=True, **ALL_ON), seed=2))


def test_hosts_together_form_the_single_host_batch(train_set):
  c = make_cfg(**ALL_ON)
  single = run(train_set, c, seed=4, num_steps=2)
  hosts = [run(train_set, c, seed=4, num_steps=2, host_id=h, num_hosts=2) for h in range(2)]
  for step in range(2):
    parts = [h[step] for h in hosts]
    assert not set(parts[0]["visible_labels"]) & set(parts[1]["visible_labels"])
    for key in single[step]:
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), single[step][key])


def test_flip_only_pipeline_flips_some_images(train_set):
  batches = run(train_set, make_cfg(flip=True), seed=0, num_steps=3)
  s = sampler.PairedIdentitySampler(train_set, 4, 2, seed=0)
  flipped = kept = 0
  for step, b in enumerate(batches):
    for row, i in enumerate(s.indices(step)[0]):
      ref = plain(train_set.visible[i].path)
      got = b["visible"][row]
      if np.array_equal(got, ref):
        kept += 1
      else:
        np.testing.assert_array_equal(got, np.fliplr(ref))
        flipped += 1
  assert flipped and kept


def test_corrupt_file_error_names_the_file(tmp_path):
  ts = write_dataset(str(tmp_path), num_ids=2)
  bad = str(tmp_path / "broken.jpg")
  with open(bad, "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 this is not really a JPEG")
  # The only visible image of class 1: every step (P=2 of 2 classes) reads it.
  vis = tuple(r for r in ts.visible if r.label != 1) + (ImageRecord(bad, 1, 1, VISIBLE),)
  ts = TrainSet(vis, ts.infrared, 2, ts.class_pids)
  for cache in (False, True):
    c = make_cfg(cache=cache, p=2, k=1)
    with pytest.raises(images_lib.BadImageError, match="broken.jpg"):
      run(ts, c, num_steps=1)


def test_missing_file_error_names_the_file(train_set):
  gone = "/nonexistent/dir/missing_42.jpg"
  vis = tuple(r for r in train_set.visible if r.label != 0) + (ImageRecord(gone, 0, 1, VISIBLE),)
  ts = TrainSet(vis, train_set.infrared, NUM_IDS, train_set.class_pids)
  c = make_cfg(p=NUM_IDS, k=1)
  with pytest.raises(FileNotFoundError, match="missing_42.jpg"):
    run(ts, c, num_steps=1)


def test_config_errors(train_set):
  with pytest.raises(ValueError, match=r"data.random_erasing=1.5"):
    run(train_set, make_cfg(erase=1.5))
  with pytest.raises(ValueError, match=r"data.pad=-1"):
    run(train_set, make_cfg(pad=-1))
  with pytest.raises(ValueError, match=r"batch.identities=7 is larger"):
    run(train_set, make_cfg(p=7))


# ----------------------------------------------------------------------------
# Each augmentation on a hand-made image (probabilities of 1 force the op).

def hand_image(h=12, w=6):
  rng = np.random.default_rng(42)
  return rng.integers(1, 250, (h, w, 3)).astype(np.uint8)


def augment(image, key, spec):
  key = np.asarray(key, np.int64)
  return pipeline.augment_image(image, key, spec).numpy()


def test_flip_forced():
  image = hand_image()
  out = augment(image, (0, 1), pipeline.AugmentSpec(flip_prob=1.0))
  np.testing.assert_array_equal(out, np.fliplr(image))


def test_flip_probability_is_half():
  image = hand_image()
  spec = pipeline.AugmentSpec(flip_prob=0.5)
  flips = [not np.array_equal(augment(image, (7, i), spec), image) for i in range(200)]
  assert 0.38 < np.mean(flips) < 0.62


def test_pad_and_crop_shifts_by_at_most_pad():
  image, pad = hand_image(), 3
  h, w, _ = image.shape
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  spec = pipeline.AugmentSpec(pad=pad)
  offsets = set()
  for i in range(30):
    out = augment(image, (1, i), spec)
    assert out.shape == image.shape
    found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
             if np.array_equal(out, padded[dy:dy + h, dx:dx + w])]
    assert found, "crop is not a window of the zero-padded image"
    offsets.update(found)
  assert len(offsets) > 10          # random offsets, not always the same one


def test_switching_one_augmentation_off_keeps_the_others_randomness():
  image = hand_image()
  both = augment(image, (5, 0), pipeline.AugmentSpec(pad=2, flip_prob=1.0))
  crop = augment(image, (5, 0), pipeline.AugmentSpec(pad=2))
  np.testing.assert_array_equal(both, np.fliplr(crop))
