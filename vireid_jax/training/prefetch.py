"""An iterator's items made ahead on a background thread, in order.

The loop's thread has one job per step on a GPU: launch it. Fetching the next host
batch from tf.data and copying it to the devices take a few milliseconds of the
host's time per step; on the loop's thread they add to every launch, and where the
host's cores are slow the GPU waits. On a thread of their own they overlap with the
launch (JAX and TensorFlow release the GIL while they work in C++).
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1


class _Failure:
  def __init__(self, error: BaseException):
    self.error = error


class Prefetcher(Iterator[T]):
  """Iterates over `items` `depth` ahead on a daemon thread; an error there is raised here.

  `close()` (or leaving the `with` block) stops the thread at its next item.
  """

  def __init__(self, items: Iterator[T], depth: int):
    if depth < 1:
      raise ValueError(f"depth must be at least 1, got {depth}")
    self._queue: queue.Queue = queue.Queue(maxsize=depth)
    self._closed = threading.Event()
    self._finished = False
    self._thread = threading.Thread(target=self._fill, args=(items,), daemon=True,
                                    name="prefetch")
    self._thread.start()

  def _fill(self, items: Iterator[T]) -> None:
    try:
      for item in items:
        if not self._put(item):
          return
      self._put(_END)
    except BaseException as e:  # pylint: disable=broad-except
      self._put(_Failure(e))    # raised on the consumer's thread, with its traceback

  def _put(self, item) -> bool:
    """Waits for room; False when closed meanwhile."""
    while not self._closed.is_set():
      try:
        self._queue.put(item, timeout=_POLL_S)
        return True
      except queue.Full:
        continue
    return False

  def __next__(self) -> T:
    if self._finished:
      raise StopIteration
    item = self._queue.get()
    if item is _END or isinstance(item, _Failure):
      self._finished = True
      self.close()
      if item is _END:
        raise StopIteration
      raise item.error
    return item

  def close(self) -> None:
    self._closed.set()

  def __enter__(self) -> Prefetcher[T]:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
