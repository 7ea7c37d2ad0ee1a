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
from fsspec.implementations.local import LocalFileSystem

from ..exceptions import DamagedData
from .batch import Batch, SparseRows
from .handle import DataHandle
from .integrity import CHECKED_FILES, read_members
from .table import Table


def read_shard(handle: DataHandle, shard_id: int) -> Batch:
    """One shard as stored: X, the targets as given (zeros when it has none), weights."""
    fs, _ = handle.filesystem()
    url = handle.shard_url(shard_id)
    expected = None if handle.shard_digests is None else handle.shard_digests[shard_id]
    local = isinstance(fs, LocalFileSystem)
    with fs.open(url, "rb") as f:
        # a local file is read member by member, in place (half the time of a copy
        # first), its bytes checked the first time; a remote one at once, rather than by
        # a request for every seek, and checked every time
        checked = CHECKED_FILES.key(f) if local else None
        first_read = checked is None or checked not in CHECKED_FILES
        source = f if local else io.BytesIO(f.read())
        arrays = read_members(source, url, expected, check_bytes=first_read)
    if checked is not None:
        CHECKED_FILES.add(checked)
    if "numeric" in arrays:
        X = Table.from_arrays(arrays)
    elif "indptr" in arrays:
        indices = arrays["indices"]
        if handle.index_offset:
            indices = indices - np.int32(handle.index_offset)
        # a shard converted from a file part is as wide as that part's widest row
        shape = (int(arrays["shape"][0]), handle.n_features)
        X = SparseRows(arrays["data"], indices, arrays["indptr"], shape)
    else:
        X = arrays["X"]
    _check_counts(handle, shard_id, X, arrays, url)
    if first_read and handle.shard_counts is not None:
        _check_contents(*handle.shard_counts[shard_id], arrays, url)
    n_rows = X.shape[0]
    y = arrays["y"] if "y" in arrays else np.zeros(n_rows)
    weights = arrays["sample_weight"] if "sample_weight" in arrays else np.ones(n_rows)
    return Batch(X, y, weights)


def _check_counts(handle: DataHandle, shard_id: int, X, arrays: dict, url: str) -> None:
    """Refuse a shard whose rows or width are not what its manifest says (the manifest or
    the shard is damaged, or one was edited): training on it would be silently wrong."""
    whole = handle.rows is None or handle.rows[shard_id] is None
    said = handle.shard_rows[shard_id] if whole else None
    if said is not None and X.shape[0] != said:
        raise DamagedData(
            f"{url} holds {X.shape[0]} rows where the manifest says {said}: the dataset is damaged"
        )
    # a sparse shard converted from a file part is as wide as its widest row, no wider
    # (its indices counted from index_offset)
    sparse = "indptr" in arrays
    width = int(arrays["shape"][1]) - handle.index_offset if sparse else X.shape[1]
    if width > handle.n_features or (not sparse and width != handle.n_features):
        raise DamagedData(
            f"{url} holds {width} columns where the manifest says {handle.n_features}: the "
            "dataset is damaged"
        )


def _check_contents(nnz: int | None, label_counts: list | None, arrays: dict, url: str) -> None:
    """Refuse a shard whose non-zeros or label counts are not what its manifest says:
    counted once a process (with the CRC-32 pass), not at every epoch."""
    if nnz is not None and "indptr" in arrays:
        held = (int(arrays["indptr"][-1]), arrays["indices"].shape[0], arrays["data"].shape[0])
        if held != (nnz,) * 3:
            raise DamagedData(
                f"{url} holds {held[1]} non-zeros where the manifest says {nnz}: the dataset "
                "is damaged"
            )
    if label_counts is not None and "y" in arrays:
        counts = np.unique(arrays["y"], return_counts=True)[1].tolist()
        if counts != list(label_counts):
            raise DamagedData(
                f"{url} holds labels counted {counts} where the manifest says "
                f"{list(label_counts)}: the dataset is damaged"
            )


def take_rows(batch: Batch, rows: np.ndarray) -> Batch:
    X = batch.X[rows] if isinstance(batch.X, np.ndarray) else batch.X.take(rows)
    return Batch(X, batch.y[rows], batch.sample_weight[rows])


def encode_labels(y: np.ndarray, classes: np.ndarray, where: str) -> np.ndarray:
    """Each label's index in the sorted ``classes``; a label outside them is an error."""
    index = np.searchsorted(classes, y)
    unseen = index >= classes.shape[0]
    unseen[~unseen] = classes[index[~unseen]] != y[~unseen]
    if unseen.any():
        raise ValueError(
            f"label {y[unseen][0]!r} in {where} is not one of the classes {classes.tolist()}"
        )
    return index


def load_shard(handle: DataHandle, shard_id: int) -> Batch:
    """Read one shard and prepare it as the handle says (see :class:`DataHandle`)."""
    batch = read_shard(handle, shard_id)
    rows = None if handle.rows is None else handle.rows[shard_id]
    if handle.shuffle_seed is not None:
        order = np.random.default_rng([handle.shuffle_seed, shard_id]).permutation(
            batch.n_samples if rows is None else rows.shape[0]
        )
        rows = order if rows is None else rows[order]
    if rows is not None:
        batch = take_rows(batch, rows)
    X = batch.X
    for transform in handle.transforms:
        X = transform(X)
    y = batch.y
    if handle.classes is not None:
        y = encode_labels(y, handle.classes, handle.shard_url(shard_id))
    return Batch(X, y, batch.sample_weight)


def rows_between(shard: Batch, start: int, stop: int | None = None) -> Batch:
    """Rows ``start:stop`` of a shard (views, not copies); the shard itself for all."""
    if start == 0 and stop is None:
        return shard
    return Batch(shard.X[start:stop], shard.y[start:stop], shard.sample_weight[start:stop])


def piece_stop(start: int, rows: int, n_samples: int, batch_size: int) -> int:
    """Where a piece of ``rows`` rows from ``start`` ends, as the compiled kernels cut
    minibatches of ``batch_size`` (``_sgd.batch_stop``): a tail of less than half a
    batch after it joins it."""
    stop = start + rows
    if stop >= n_samples or 2 * (n_samples - stop) < batch_size:
        stop = n_samples
    return stop


def minibatches(shard: Batch, batch_size: int) -> Iterator[Batch]:
    """The shard's minibatches, as the compiled kernels cut them: ``batch_size`` rows,
    a tail of less than half a batch joining the last one."""
    start, n_samples = 0, shard.n_samples
    while start < n_samples:
        stop = piece_stop(start, batch_size, n_samples, batch_size)
        yield rows_between(shard, start, stop)
        start = stop


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
