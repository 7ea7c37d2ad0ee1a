"""Raw table columns, as CSV and Parquet shards hold them: numbers and strings, by name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._hashing import hash_table, murmurhash3_32
from .batch import SparseRows


@dataclass(frozen=True)
class Table:
    """Rows of a table: numeric columns (float32, NaN where missing) and categorical ones
    (bytes, empty where missing). Estimators need numbers: a table is hashed
    (:class:`~sklearn_cirrus.preprocessing.ServerlessFeatureHasher`) or, when it has no
    categorical column, read as a dense matrix of its numbers."""

    numeric: np.ndarray
    categorical: np.ndarray
    numeric_names: tuple[str, ...]
    categorical_names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        n_rows = max(self.numeric.shape[0], self.categorical.shape[0])
        return (n_rows, len(self.numeric_names) + len(self.categorical_names))

    def __getitem__(self, rows: slice) -> Table:
        return Table(self.numeric[rows], self.categorical[rows], *self.names())

    def take(self, rows: np.ndarray) -> Table:
        return self[rows]

    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.numeric_names, self.categorical_names

    def arrays(self) -> dict[str, np.ndarray]:
        """What a shard file stores of it."""
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "numeric_names": np.asarray(self.numeric_names, dtype=str),
            "categorical_names": np.asarray(self.categorical_names, dtype=str),
        }

    def column_names(self) -> dict:
        return {"numeric": list(self.numeric_names), "categorical": list(self.categorical_names)}

    @classmethod
    def from_frame(cls, frame) -> Table:
        """A pandas DataFrame's columns: number columns and the others as strings (missing
        values, None or NaN, as empty strings)."""
        numeric = [
            c
            for c in frame.columns
            if isinstance(frame[c].dtype, np.dtype) and np.issubdtype(frame[c].dtype, np.number)
        ]
        categorical = [c for c in frame.columns if c not in numeric]
        strings = np.empty((len(frame), len(categorical)), dtype=object)
        for j, column in enumerate(categorical):
            missing = frame[column].isna().to_numpy()
            values = frame[column].to_numpy(dtype=object)
            strings[:, j] = [
                b"" if gone else str(v).encode() for v, gone in zip(values, missing, strict=True)
            ]
        return cls(
            frame[numeric].to_numpy(dtype=np.float32).reshape(len(frame), len(numeric)),
            strings.astype("S") if strings.size else np.zeros(strings.shape, dtype="S1"),
            tuple(str(c) for c in numeric),
            tuple(str(c) for c in categorical),
        )

    @classmethod
    def from_arrays(cls, arrays) -> Table:
        return cls(
            arrays["numeric"],
            arrays["categorical"],
            tuple(arrays["numeric_names"].tolist()),
            tuple(arrays["categorical_names"].tolist()),
        )


@dataclass(frozen=True)
class TableNumbers:
    """A table without categorical columns as a dense float64 matrix (a reader
    transform); a missing number is an error naming its column."""

    def __call__(self, table: Table) -> np.ndarray:
        missing = np.isnan(table.numeric).any(axis=0)
        if missing.any():
            name = table.numeric_names[int(np.flatnonzero(missing)[0])]
            raise ValueError(
                f"column {name!r} has missing values; impute them, or hash the table "
                "(ServerlessFeatureHasher leaves missing cells out)"
            )
        return table.numeric.astype(np.float64)


@dataclass(frozen=True)
class TableHasher:
    """Feature hashing of a table's raw columns, as scikit-learn's ``FeatureHasher``
    (``sklearn_cirrus.data._hashing``): a reader transform, and the in-memory path."""

    n_features: int
    alternate_sign: bool = True

    def __call__(self, table: Table):
        n_rows = table.shape[0]
        categorical = np.ascontiguousarray(table.categorical)
        if categorical.dtype.itemsize == 0 or categorical.shape[1] == 0:
            categorical = np.zeros((n_rows, 0), dtype="S1")
        strings = categorical.view(np.uint8).reshape(
            n_rows, categorical.shape[1], categorical.dtype.itemsize
        )
        data, indices, indptr = hash_table(
            np.ascontiguousarray(table.numeric, dtype=np.float32).reshape(n_rows, -1),
            np.asarray(
                [murmurhash3_32(name.encode()) for name in table.numeric_names], dtype=np.int32
            ),
            strings,
            [f"{name}=".encode() for name in table.categorical_names],
            self.n_features,
            self.alternate_sign,
        )
        return SparseRows(data, indices, indptr, (n_rows, self.n_features))
