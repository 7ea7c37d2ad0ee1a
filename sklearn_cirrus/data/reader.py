"""Streaming a worker's shards with a background prefetch.

A worker holds at most the shard it is training on plus ``prefetch`` shards read
ahead, so its memory is bounded by the shard size, never by the dataset.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from ..kernels.base import Batch, SparseRows
from .handle import DataHandle


def load_shard(handle: DataHandle, shard_id: int) -> Batch:
    """Read one shard back as a :class:`Batch` holding all of its rows."""
    fs, _ = handle.filesystem()
    with fs.open(handle.shard_url(shard_id), "rb") as f:
        arrays = np.load(io.BytesIO(f.read()))
        if handle.sparse:
            X = SparseRows(
                arrays["data"], arrays["indices"], arrays["indptr"], tuple(arrays["shape"])
            )
        else:
            X = arrays["X"]
        return Batch(X, arrays["y"], arrays["sample_weight"])


def minibatches(shard: Batch, batch_size: int) -> Iterator[Batch]:
    for start in range(0, shard.n_samples, batch_size):
        stop = start + batch_size
        yield Batch(shard.X[start:stop], shard.y[start:stop], shard.sample_weight[start:stop])


class ShardReader:
    """Iterate over ``(shard_id, shard)`` for ``shard_ids``, reading ahead in a thread.

    ``seconds_waiting`` is the time the consumer spent blocked on I/O. Errors in the
    reading thread are raised in the consumer. ``close()`` stops reading early.
    """

    _DONE = object()

    def __init__(self, handle: DataHandle, shard_ids: Sequence[int], prefetch: int = 1):
        self.handle = handle
        self.shard_ids = list(shard_ids)
        self.seconds_waiting = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read_all, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_all(self) -> None:
        try:
            for shard_id in self.shard_ids:
                if not self._put((shard_id, load_shard(self.handle, shard_id))):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        while True:
            started = time.perf_counter()
            item = self._queue.get()
            self.seconds_waiting += time.perf_counter() - started
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
