"""What the engine asks of a model kernel; kernels are pure, picklable and do no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..store.base import ModelTable
from ..store.optimizers import OptimizerConfig


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
        from ._rows import take_csr

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


# rows of each store key a minibatch needs, and the minibatch renumbered to match them
RowPlan = tuple[dict[str, np.ndarray], Batch]


class Kernel(Protocol):
    """A model kept in the store as named 2-D arrays, and how workers train it.

    ``init_params`` (kernel-specific arguments) returns ``{key: array}`` for every key
    of ``KEYS``, and ``update_rules`` the rule each key's store arrays follow.
    ``train_tables`` runs the compiled loop over a shard, ``batch_size`` rows a step,
    updating one :class:`ModelTable` a key in place: the store's own arrays when the
    worker shares its memory, else pulled copies of the rows the shard's ids index
    (``row_planner()`` maps a minibatch to those rows and renumbers it to match).
    ``read`` gives the model as it stands in a store, every row brought up to date;
    ``loss_of_zeros`` the mean loss of a model of zeros (None where not known), against
    which the driver tells a diverged training loss.
    """

    KEYS: tuple[str, ...]

    def update_rules(self, optimizer: OptimizerConfig) -> dict[str, OptimizerConfig]: ...

    def row_planner(self) -> Callable[[Batch], RowPlan]: ...

    def train_tables(
        self, tables: dict[str, ModelTable], shard: Batch, batch_size: int
    ) -> tuple[float, int]: ...

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int: ...

    def loss_of_zeros(self, y, sample_weight) -> float | None: ...

    def read(self, store) -> dict[str, np.ndarray]: ...
