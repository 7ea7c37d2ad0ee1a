"""(user id, item id) pairs read from a dataset's shards, for matrix factorization.

A ratings dataset's X has two columns of ids: numbers (whole numbers, read as int64) or
strings (a table's categorical columns, read as str). The driver never holds them: a
map over the shards gives each shard's distinct ids and its ratings' sums
(:class:`ShardIds`), from which the driver makes the vocabularies, and the workers'
readers turn ids into codes as they read (:class:`PairCodes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .table import Table


def id_columns(X) -> np.ndarray:
    """A shard's X as an (n, 2) array of its raw ids: int64 numbers or str strings."""
    if isinstance(X, Table):
        X = X.numeric if X.numeric.shape[1] else X.categorical
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have 2 columns, (user id, item id) pairs, got shape {X.shape}")
    if X.dtype.kind in "SOU":
        ids = X
        if X.dtype.kind != "U":
            ids = np.array(
                [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in X.ravel()],
                dtype=str,
            ).reshape(X.shape)
        if (ids == "").any():
            raise ValueError("Input X contains a missing id: every id must be a value")
        return ids
    if not np.isfinite(X).all():
        raise ValueError("Input X contains NaN or infinity: every id must be a value")
    whole = X.astype(np.int64)
    if not (whole == X).all():
        raise ValueError(
            "ids stored as numbers must be whole numbers; store other ids as "
            "categorical (string) columns"
        )
    return whole


def first_appearances(ids: np.ndarray) -> np.ndarray:
    """The distinct ids in the order they first appear."""
    distinct, first = np.unique(ids, return_index=True)
    return distinct[np.argsort(first)]


@dataclass(frozen=True)
class ShardIds:
    """A map's function: a shard's distinct users and items and its ratings' sums (the
    shard read through :func:`id_columns`)."""

    def __call__(self, batch) -> dict:
        ids = np.asarray(batch.X)
        y, weight = np.asarray(batch.y, dtype=np.float64), batch.sample_weight
        return {
            "users": first_appearances(ids[:, 0]),
            "items": first_appearances(ids[:, 1]),
            "weight": float(weight.sum()),
            "weighted": float(weight @ y),
            "low": float(y.min()) if y.size else np.inf,
            "high": float(y.max()) if y.size else -np.inf,
        }


@dataclass(frozen=True)
class IdCodes:
    """Each id's code: its place in the vocabulary; -1 for an id outside it."""

    ordered: np.ndarray  # the vocabulary, sorted
    codes: np.ndarray  # the code of each id of ``ordered``

    @classmethod
    def of(cls, vocabulary: np.ndarray) -> IdCodes:
        order = np.argsort(vocabulary, kind="stable")
        return cls(vocabulary[order], order)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if self.ordered.size == 0:
            return np.full(ids.shape[0], -1, dtype=np.int64)
        place = np.minimum(np.searchsorted(self.ordered, ids), self.ordered.size - 1)
        return np.where(self.ordered[place] == ids, self.codes[place], -1)


@dataclass(frozen=True)
class PairCodes:
    """A reader transform: a shard's id pairs as (user code, item code) rows."""

    users: IdCodes
    items: IdCodes

    def __call__(self, X) -> np.ndarray:
        ids = id_columns(X)
        return np.column_stack([self.users(ids[:, 0]), self.items(ids[:, 1])])


@dataclass(frozen=True)
class PairsOf:
    """A map's function: the (user code, item code) pairs of a coded shard whose user
    is one of ``users`` (codes, sorted)."""

    users: np.ndarray

    def __call__(self, batch) -> np.ndarray:
        pairs = np.asarray(batch.X)
        return pairs[np.isin(pairs[:, 0], self.users)]
