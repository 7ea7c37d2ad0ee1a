"""What workers read shards into: rows without scipy, and minibatches of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._rows import take_csr


@dataclass(frozen=True)
class SparseRows:
    """Rows of a CSR matrix as its three arrays, without scipy.

    What workers read shards into: importing ``scipy.sparse`` would cost a cold worker
    more than half a second, and the compiled kernels need only the arrays.
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    def __getitem__(self, rows: slice) -> SparseRows:
        start, stop, _ = rows.indices(self.shape[0])
        first, last = self.indptr[start], self.indptr[max(stop, start)]
        return SparseRows(
            self.data[first:last],
            self.indices[first:last],
            self.indptr[start : max(stop, start) + 1] - first,
            (max(stop - start, 0), self.shape[1]),
        )

    def take(self, rows: np.ndarray) -> SparseRows:
        """The given rows, in that order (compiled: a worker shuffles every shard so)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if self.indices.dtype == np.int32:
            data, indices, indptr = take_csr(self.data, self.indices, self.indptr, rows)
            return SparseRows(data, indices, indptr, (rows.shape[0], self.shape[1]))
        # 64-bit column indices (over 2**31 features): numpy's indexing
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(
            self.data[positions], self.indices[positions], indptr, (rows.shape[0], self.shape[1])
        )

    def tocsr(self):
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


@dataclass(frozen=True)
class Batch:
    """A minibatch (or a shard of them): features, encoded targets, per-sample weights.

    ``X`` is dense, or sparse as :class:`SparseRows` (or any CSR matrix).
    """

    X: np.ndarray | SparseRows
    y: np.ndarray
    sample_weight: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]
