"""The paired identity sampler and the fake batches: balance, labels, determinism, hosts."""

from __future__ import annotations

import numpy as np
import pytest

from vireid_jax.data import fake, sampler
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet


def make_train_set(counts_vis=(3, 1, 4, 2, 5, 2), counts_ir=(2, 3, 1, 4, 2, 2)) -> TrainSet:
  """6 classes with uneven image counts, records interleaved (not sorted by class)."""
  def records(counts, modality, camera):
    recs = [ImageRecord(f"/x/{modality}/{c}_{j}.jpg", c, camera, modality)
            for c, n in enumerate(counts) for j in range(n)]
    order = np.random.default_rng(modality).permutation(len(recs))
    return tuple(recs[i] for i in order)
  return TrainSet(records(counts_vis, VISIBLE, 1), records(counts_ir, INFRARED, 3),
                  len(counts_vis), tuple(range(100, 100 + len(counts_vis))))


@pytest.fixture(name="train_set")
def fixture_train_set():
  return make_train_set()


def test_batch_is_identity_balanced_and_labels_match_records(train_set):
  p, k = 4, 3
  s = sampler.PairedIdentitySampler(train_set, p, k, seed=7)
  for step in range(20):
    vis, ir, labels = s.indices(step)
    assert vis.shape == ir.shape == labels.shape == (p * k,)
    assert labels.dtype == np.int32
    # K contiguous rows per identity, P distinct identities.
    blocks = labels.reshape(p, k)
    assert (blocks == blocks[:, :1]).all()
    assert len(set(blocks[:, 0])) == p
    # Each row's image really has that label, in both modalities.
    assert [train_set.visible[i].label for i in vis] == list(labels)
    assert [train_set.infrared[i].label for i in ir] == list(labels)
    assert all(train_set.visible[i].modality == VISIBLE for i in vis)
    assert all(train_set.infrared[i].modality == INFRARED for i in ir)


def test_every_identity_and_image_is_eventually_drawn(train_set):
  s = sampler.PairedIdentitySampler(train_set, 2, 2, seed=0)
  seen_vis, seen_ir = set(), set()
  for step in range(300):
    vis, ir, _ = s.indices(step)
    seen_vis.update(vis.tolist())
    seen_ir.update(ir.tolist())
  assert seen_vis == set(range(len(train_set.visible)))
  assert seen_ir == set(range(len(train_set.infrared)))


def test_with_replacement_within_identity():
  # One visible image per class but K=3: the same image repeats (with replacement).
  ts = make_train_set(counts_vis=(1, 1, 1), counts_ir=(2, 2, 2))
  vis, _, labels = sampler.PairedIdentitySampler(ts, 3, 3, seed=1).indices(0)
  for c in range(3):
    assert len(set(vis[labels == c])) == 1


def test_modalities_drawn_independently():
  # Same image lists in both modalities: independent draws must differ somewhere.
  labels = np.repeat(np.arange(5), 6)
  s = sampler.PairedIdentitySampler((labels, labels), 3, 4, seed=0)
  assert any(not np.array_equal(*s.indices(step)[:2]) for step in range(5))


def test_deterministic_in_seed_and_step(train_set):
  a = sampler.PairedIdentitySampler(train_set, 4, 2, seed=3)
  b = sampler.PairedIdentitySampler(train_set, 4, 2, seed=3)
  c = sampler.PairedIdentitySampler(train_set, 4, 2, seed=4)
  for step in (0, 1, 17, 10**6):
    for x, y in zip(a.indices(step), b.indices(step)):
      np.testing.assert_array_equal(x, y)
  # Different steps and different seeds give different batches.
  assert len({a.indices(s)[0].tobytes() for s in range(10)}) == 10
  assert not np.array_equal(a.indices(5)[0], c.indices(5)[0])
  # Random order of steps (as after a resume) does not matter: no hidden state.
  later = a.indices(9)
  a.indices(2)
  np.testing.assert_array_equal(a.indices(9)[0], later[0])


def test_label_arrays_equal_train_set(train_set):
  vis = [r.label for r in train_set.visible]
  ir = [r.label for r in train_set.infrared]
  a = sampler.PairedIdentitySampler(train_set, 3, 2, seed=5)
  b = sampler.PairedIdentitySampler((vis, ir), 3, 2, seed=5)
  for x, y in zip(a.indices(4), b.indices(4)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("num_hosts", [2, 3, 6])
def test_hosts_are_disjoint_and_union_is_single_host_draw(train_set, num_hosts):
  p, k = 6, 2
  single = sampler.PairedIdentitySampler(train_set, p, k, seed=11)
  hosts = [sampler.PairedIdentitySampler(train_set, p, k, seed=11, host_id=h,
                                         num_hosts=num_hosts) for h in range(num_hosts)]
  for step in range(5):
    parts = [h.indices(step) for h in hosts]
    for part in parts:
      assert part[0].shape == (p * k // num_hosts,)
      assert len(set(part[2])) == p // num_hosts
    ids = [set(part[2]) for part in parts]
    assert sum(len(i) for i in ids) == len(set().union(*ids)) == p     # disjoint
    for j in range(3):
      np.testing.assert_array_equal(np.concatenate([part[j] for part in parts]),
                                    single.indices(step)[j])


def test_steps_per_epoch_follow_agw(train_set):
  """AGW's IdentitySampler: int(max(#visible, #infrared) / (P*K)) + 1 batches per epoch."""
  assert (len(train_set.visible), len(train_set.infrared)) == (17, 14)
  assert sampler.steps_per_epoch(train_set, 2, 4) == 17 // 8 + 1 == 3
  assert sampler.steps_per_epoch(train_set, 8, 4) == 1
  assert sampler.epoch_steps(22258, 11909, 8, 4) == 696      # SYSU-MM01
  assert sampler.epoch_steps(2060, 2060, 8, 4) == 65          # RegDB
  assert sampler.epoch_steps(100, 130, 8, 4) == 5             # the larger modality counts
  assert sampler.epoch_steps(64, 10, 8, 4) == 3               # an exact multiple still adds one
  with pytest.raises(ValueError, match="must be >= 1"):
    sampler.epoch_steps(10, 10, 0, 4)


def test_errors(train_set):
  with pytest.raises(ValueError, match=r"batch.identities=7 is larger than the 6 training"):
    sampler.PairedIdentitySampler(train_set, 7, 2, seed=0)
  with pytest.raises(ValueError, match=r"batch.identities=4 is not divisible by the 3 hosts"):
    sampler.PairedIdentitySampler(train_set, 4, 2, seed=0, host_id=0, num_hosts=3)
  with pytest.raises(ValueError, match="host_id=2"):
    sampler.PairedIdentitySampler(train_set, 4, 2, seed=0, host_id=2, num_hosts=2)
  # A class without infrared images is named.
  missing = TrainSet(train_set.visible,
                     tuple(r for r in train_set.infrared if r.label not in (2, 4)),
                     train_set.num_classes, train_set.class_pids)
  with pytest.raises(ValueError, match=r"classes 2, 4 have no infrared image"):
    sampler.PairedIdentitySampler(missing, 2, 2, seed=0)
  with pytest.raises(ValueError, match="step=-1"):
    sampler.PairedIdentitySampler(train_set, 2, 2, seed=0).indices(-1)


def test_fake_batch_structure_and_hosts():
  p, k, size = 4, 3, (16, 8)
  full = fake.fake_batch(0, p, k, size, num_classes=10)
  assert full["visible"].shape == full["infrared"].shape == (p * k, 16, 8, 3)
  assert full["visible"].dtype == full["infrared"].dtype == np.uint8
  assert full["visible_labels"].dtype == full["infrared_labels"].dtype == np.int32
  np.testing.assert_array_equal(full["visible_labels"], full["infrared_labels"])
  blocks = full["visible_labels"].reshape(p, k)
  assert (blocks == blocks[:, :1]).all() and len(set(blocks[:, 0])) == p
  assert blocks.min() >= 0 and blocks.max() < 10
  # Same seed on every host: disjoint identities whose union is the global draw.
  halves = [fake.fake_batch(0, p, k, size, 10, host_id=h, num_hosts=2) for h in range(2)]
  np.testing.assert_array_equal(
      np.concatenate([b["visible_labels"] for b in halves]), full["visible_labels"])
  with pytest.raises(ValueError, match="larger than the 3 classes"):
    fake.fake_batch(0, 4, 2, size, num_classes=3)
  with pytest.raises(ValueError, match="not divisible by the 3 hosts"):
    fake.fake_batch(0, 4, 2, size, num_classes=10, num_hosts=3)
