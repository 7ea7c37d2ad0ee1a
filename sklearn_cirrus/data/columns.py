"""Column statistics and column-wise transforms of shards, as workers compute and apply them.

A scaler fitted on a dataset reduces :func:`column_statistics` of every shard with
:func:`combine_statistics` (counts, means and squared deviations merge exactly, as in
Chan et al.'s parallel variance); its ``transform`` is a :class:`ColumnScaling` the
workers' reader applies. numpy only, so that a cold worker need not import scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import SparseRows


@dataclass(frozen=True)
class ColumnStatistics:
    """Per column: values counted (NaN left out), mean, sum of squared deviations,
    minimum, maximum (implicit zeros of sparse rows count as values)."""

    count: np.ndarray
    mean: np.ndarray
    squared_deviations: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        return self.squared_deviations / np.maximum(self.count, 1)


def column_statistics(batch) -> ColumnStatistics:
    """The statistics of one shard's X (a worker's map)."""
    X = batch.X
    if isinstance(X, SparseRows):
        n_rows, n_columns = X.shape
        data = np.asarray(X.data, dtype=np.float64)
        sums = np.bincount(X.indices, weights=data, minlength=n_columns)
        squares = np.bincount(X.indices, weights=data * data, minlength=n_columns)
        stored = np.bincount(X.indices, minlength=n_columns)
        mean = sums / max(n_rows, 1)
        # implicit zeros are values too: they bound the minimum and maximum at 0
        minimum = np.where(stored < n_rows, 0.0, np.inf)
        maximum = np.where(stored < n_rows, 0.0, -np.inf)
        np.minimum.at(minimum, X.indices, data)
        np.maximum.at(maximum, X.indices, data)
        return ColumnStatistics(
            np.full(n_columns, float(n_rows)),
            mean,
            np.maximum(squares - n_rows * mean * mean, 0.0),
            minimum,
            maximum,
        )
    X = np.asarray(X, dtype=np.float64)
    present = ~np.isnan(X)
    count = present.sum(axis=0).astype(np.float64)
    mean = np.where(present, X, 0.0).sum(axis=0) / np.maximum(count, 1)
    deviations = np.where(present, X - mean, 0.0)
    return ColumnStatistics(
        count,
        mean,
        (deviations * deviations).sum(axis=0),
        np.where(present, X, np.inf).min(axis=0),
        np.where(present, X, -np.inf).max(axis=0),
    )


def combine_statistics(a: ColumnStatistics, b: ColumnStatistics) -> ColumnStatistics:
    """The statistics of two shards together (associative and commutative)."""
    count = a.count + b.count
    share = np.divide(b.count, count, out=np.zeros_like(count), where=count > 0)
    delta = b.mean - a.mean
    return ColumnStatistics(
        count,
        a.mean + delta * share,
        a.squared_deviations + b.squared_deviations + delta * delta * a.count * share,
        np.minimum(a.minimum, b.minimum),
        np.maximum(a.maximum, b.maximum),
    )


@dataclass(frozen=True)
class ColumnScaling:
    """``((X - subtract) / divide) * multiply + add``, column by column, then ``clip``:
    a fitted scaler's transform, run by the workers' reader. Sparse rows keep their
    zeros, so they take no ``subtract`` or ``add``."""

    subtract: np.ndarray | None = None
    divide: np.ndarray | None = None
    multiply: np.ndarray | None = None
    add: np.ndarray | None = None
    clip: tuple[float, float] | None = None

    def __call__(self, X):
        if isinstance(X, SparseRows):
            values = np.asarray(X.data, dtype=np.float64)
            columns = X.indices
            if self.divide is not None:
                values = values / self.divide[columns]
            if self.multiply is not None:
                values = values * self.multiply[columns]
            if self.clip is not None:
                values = np.clip(values, *self.clip)
            return SparseRows(values, X.indices, X.indptr, X.shape)
        X = np.array(X, dtype=np.float64)
        if self.subtract is not None:
            X -= self.subtract
        if self.divide is not None:
            X /= self.divide
        if self.multiply is not None:
            X *= self.multiply
        if self.add is not None:
            X += self.add
        if self.clip is not None:
            np.clip(X, *self.clip, out=X)
        return X


@dataclass(frozen=True)
class RowNormalization:
    """Each row divided by its norm ('l1', 'l2' or 'max'); rows of zeros stay zeros."""

    norm: str = "l2"

    def __call__(self, X):
        sparse = isinstance(X, SparseRows)
        values = np.asarray(X.data if sparse else X, dtype=np.float64)
        if sparse:
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            measure = {"l1": np.abs(values), "l2": values * values, "max": np.abs(values)}
            norms = np.zeros(X.shape[0])
            if self.norm == "max":
                np.maximum.at(norms, rows, measure["max"])
            else:
                np.add.at(norms, rows, measure[self.norm])
        else:
            norms = {
                "l1": lambda: np.abs(values).sum(axis=1),
                "l2": lambda: (values * values).sum(axis=1),
                "max": lambda: np.abs(values).max(axis=1),
            }[self.norm]()
        if self.norm == "l2":
            norms = np.sqrt(norms)
        norms[norms == 0] = 1.0
        if sparse:
            return SparseRows(values / norms[rows], X.indices, X.indptr, X.shape)
        return values / norms[:, None]
