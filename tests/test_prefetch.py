"""Batches made ahead on a background thread: same items in the same order, errors surface."""

import threading
import time

import jax
import numpy as np
import pytest

from vireid_jax.training import parallel, prefetch, setup


def test_items_come_in_order_and_the_thread_ends_with_them():
  p = prefetch.Prefetcher(iter(range(50)), depth=3)
  assert list(p) == list(range(50))
  assert next(p, "done") == "done"
  p._thread.join(timeout=5)
  assert not p._thread.is_alive()


def test_it_runs_ahead_by_depth_and_no_further():
  made = []

  def items():
    for i in range(10):
      made.append(i)
      yield i

  p = prefetch.Prefetcher(items(), depth=2)
  deadline = time.monotonic() + 5
  while len(made) < 3 and time.monotonic() < deadline:
    time.sleep(0.01)
  time.sleep(0.2)
  # Two in the queue and one in the thread's hand, waiting for room.
  assert made == [0, 1, 2]
  assert next(p) == 0
  p.close()


def test_an_error_in_the_source_is_raised_on_the_consumers_thread():
  def items():
    yield 1
    raise OSError("corrupt image x.jpg")

  p = prefetch.Prefetcher(items(), depth=2)
  assert next(p) == 1
  with pytest.raises(OSError, match="corrupt image"):
    next(p)
  with pytest.raises(StopIteration):
    next(p)


def test_close_stops_a_thread_that_waits_for_room():
  stopped = threading.Event()

  def endless():
    try:
      i = 0
      while True:
        yield i
        i += 1
    finally:
      stopped.set()

  with prefetch.Prefetcher(endless(), depth=1) as p:
    assert next(p) == 0
  p._thread.join(timeout=5)
  assert not p._thread.is_alive() and stopped.is_set()


def test_depth_zero_is_refused():
  with pytest.raises(ValueError, match="at least 1"):
    prefetch.Prefetcher(iter(()), depth=0)


def test_global_batches_ahead_on_a_thread_equal_those_made_by_the_caller():
  mesh = parallel.make_mesh(jax.devices()[:1])
  rng = np.random.default_rng(0)
  host = [{"visible": rng.integers(0, 256, (4, 8, 4, 3), dtype=np.uint8),
           "visible_labels": np.full(4, i, np.int32)} for i in range(7)]

  def source(start):
    return iter(host[start:])

  for start in (0, 3):
    mine = [jax.tree.map(np.asarray, b) for b in setup.global_batches(source, start, mesh, 0)]
    batches = setup.global_batches(source, start, mesh, 2)
    ahead = [jax.tree.map(np.asarray, b) for b in batches]
    batches.close()
    assert len(mine) == len(ahead) == 7 - start
    for a, b, h in zip(mine, ahead, host[start:]):
      for key in h:
        np.testing.assert_array_equal(a[key], h[key])
        np.testing.assert_array_equal(b[key], h[key])
