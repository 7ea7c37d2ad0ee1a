"""Staging: the driver cuts the training set into minibatch-aligned shards in an object store.

A shard is one ``.npz`` file holding a whole number of minibatches: a CSR part (data,
indices, indptr) or a dense block, the encoded targets and the per-sample weights.
Shards go wherever fsspec can write (``memory://``, a local folder, ``s3://``...), next
to a ``manifest.json``; a :class:`DataHandle` is all a worker needs to find them.
"""

from __future__ import annotations

import io
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import fsspec
import numpy as np
import scipy.sparse as sp
from fsspec.implementations.local import LocalFileSystem

from .batch import Batch, SparseRows
from .handle import DataHandle
from .integrity import digest_of
from .table import Table

# Shards are sized for a worker's memory, not the dataset's: a few MB each, so that
# one being used and one being prefetched fit easily in a small serverless function.
DEFAULT_SHARD_BYTES = 4 * 2**20
# shards a stage writes at once (see stage)
STAGING_THREADS = 2
# Cut at least this many shards per worker per epoch, so the driver can rebalance work
# and relaunch a failed invocation without redoing much.
MIN_SHARDS_PER_WORKER = 4


def bytes_per_row(X) -> float:
    """About how many bytes a row of ``X`` (dense, CSR or a Table) takes in a shard."""
    if isinstance(X, Table):
        return (X.numeric.itemsize * X.numeric.shape[1]) + X.categorical[:1].nbytes + 16
    if sp.issparse(X):
        per_value = X.data.itemsize + np.dtype(np.int32).itemsize
        return per_value * X.nnz / max(X.shape[0], 1) + 16  # + indptr, target, weight
    return X.shape[1] * X.dtype.itemsize + 16


def plan_shard_rows(
    n_samples: int, bytes_per_row: float, batch_size: int, n_workers: int, shard_bytes: int
) -> int:
    """Rows per shard: whole batches, about ``shard_bytes``, enough shards per worker."""
    n_batches = math.ceil(n_samples / batch_size)
    batches_by_size = max(1, int(shard_bytes // max(bytes_per_row * batch_size, 1)))
    batches_by_count = max(1, math.ceil(n_batches / (MIN_SHARDS_PER_WORKER * n_workers)))
    return batch_size * min(batches_by_size, batches_by_count)


def shard_slices(n_samples: int, rows_per_shard: int, batch_size: int) -> list[slice]:
    """The rows of each shard: ``rows_per_shard`` (whole batches) each, except that a last
    shard of less than half a batch joins the one before, whose last minibatch takes it
    (as the kernels cut a shard: ``minibatches``)."""
    starts = list(range(0, n_samples, rows_per_shard))
    if len(starts) > 1 and 2 * (n_samples - starts[-1]) < batch_size:
        starts.pop()
    ends = starts[1:] + [n_samples]
    return [slice(start, end) for start, end in zip(starts, ends, strict=True)]


def data_bytes(X) -> float:
    """About how many bytes the shards of ``X`` take."""
    return bytes_per_row(X) * X.shape[0]


def shards_in_memory(
    X,
    y: np.ndarray,
    sample_weight: np.ndarray,
    *,
    batch_size: int,
    n_workers: int = 1,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    order: np.ndarray | None = None,
) -> list[Batch]:
    """The shards :func:`stage` would write, kept in memory for a fit that stays home."""
    n_samples = X.shape[0]
    rows_per_shard = plan_shard_rows(
        n_samples, bytes_per_row(X), batch_size, n_workers, shard_bytes
    )
    if order is not None:
        X, y, sample_weight = X[order], y[order], sample_weight[order]
    if sp.issparse(X):
        X = X.tocsr()
        X = SparseRows(X.data, X.indices.astype(np.int32), X.indptr.astype(np.int64), X.shape)
    else:
        X = np.ascontiguousarray(X)
    return [
        Batch(X[rows], y[rows], sample_weight[rows])
        for rows in shard_slices(n_samples, rows_per_shard, batch_size)
    ]


def _shard_arrays(X, y, sample_weight) -> dict[str, np.ndarray]:
    arrays = {name: a for name, a in (("y", y), ("sample_weight", sample_weight)) if a is not None}
    if isinstance(X, Table):
        arrays.update(X.arrays())
    elif sp.issparse(X):
        indices = X.indices
        if indices.dtype != np.int32 and X.shape[1] < np.iinfo(np.int32).max:
            indices = indices.astype(np.int32)
        arrays.update(
            data=X.data, indices=indices, indptr=X.indptr - X.indptr[0], shape=np.asarray(X.shape)
        )
    else:
        arrays["X"] = np.ascontiguousarray(X)
    return arrays


def write_shard(fs, path: str, X, y=None, sample_weight=None) -> tuple[int, str]:
    """Write one shard file (X dense or CSR, targets and weights when given); its size
    and digest (``integrity.digest``)."""
    buffer = io.BytesIO()
    np.savez(buffer, **_shard_arrays(X, y, sample_weight))
    payload = buffer.getvalue()
    with fs.open(path, "wb") as f:
        f.write(payload)
    private_file(fs, path)
    return len(payload), digest_of(payload)


def private_file(fs, path: str) -> None:
    """On this machine, make a file readable by its owner only (0600)."""
    if isinstance(fs, LocalFileSystem):
        os.chmod(path, 0o600)


def private_folder(fs, root: str) -> None:
    """Create ``root``; on this machine, readable by its owner only (it is the user's
    training data, perhaps in /dev/shm or a shared folder)."""
    fs.makedirs(root, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        os.chmod(root, 0o700)


def stage(
    X,
    y: np.ndarray,
    sample_weight: np.ndarray,
    url: str,
    *,
    batch_size: int,
    n_workers: int = 1,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    storage_options: dict | None = None,
    order: np.ndarray | None = None,
) -> DataHandle:
    """Write ``X`` (dense or CSR), ``y`` and ``sample_weight`` as shards under ``url``.

    ``order``, a permutation of the rows, shuffles them on the way without copying X.
    """
    storage_options = storage_options or {}
    n_samples = X.shape[0]
    rows_per_shard = plan_shard_rows(
        n_samples, bytes_per_row(X), batch_size, n_workers, shard_bytes
    )
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    private_folder(fs, root)
    handle_url = url.rstrip("/")

    def write(shard_id: int, rows) -> tuple[int, tuple[int, str]]:
        if order is not None:
            rows = order[rows]
        targets = y[rows]
        path = f"{root}/shard-{shard_id:06d}.npz"
        return len(targets), write_shard(fs, path, X[rows], targets, sample_weight[rows])

    # two shards at a time: cutting rows, the zip's checksums and the writes release the
    # GIL, so staging large data takes two cores where the machine has them
    slices = list(enumerate(shard_slices(n_samples, rows_per_shard, batch_size)))
    with ThreadPoolExecutor(STAGING_THREADS) as pool:
        written = list(pool.map(lambda shard: write(*shard), slices))
    shard_rows = [n_rows for n_rows, _ in written]
    max_bytes = max((size for _, (size, _) in written), default=0)
    handle = DataHandle(
        url=handle_url,
        n_samples=n_samples,
        n_features=X.shape[1],
        sparse=sp.issparse(X),
        batch_size=batch_size,
        shard_rows=tuple(shard_rows),
        max_shard_bytes=max_bytes,
        storage_options=storage_options,
        shard_digests=tuple(digest for _, (_, digest) in written),
    )
    with fs.open(f"{root}/manifest.json", "w") as f:
        json.dump(asdict(handle), f)
    private_file(fs, f"{root}/manifest.json")
    return handle


def remove(handle: DataHandle) -> None:
    """Delete every shard and the manifest of a staged dataset."""
    remove_url(handle.url, handle.storage_options)


def remove_url(url: str, storage_options: dict | None = None) -> None:
    """Delete the folder at ``url`` and all in it, if it exists."""
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if fs.exists(root):
        fs.rm(root, recursive=True)
