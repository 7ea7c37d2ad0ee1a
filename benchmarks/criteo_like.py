"""Click logs in Criteo's layout, generated: a tab-separated label, 13 counts, 26 categories.

Categorical values follow power laws (a Zipf draw over vocabularies of 10 to 2 million
values, written as 8 hex digits as in the real logs), counts are log-normal, and some
cells of both are empty. The label is drawn from a logistic model of the categories and
counts, so that the click-through rate is about 25% and a model has something to learn.

    python benchmarks/criteo_like.py OUT.tsv N_ROWS
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

N_COUNTS, N_CATEGORIES = 13, 26
NAMES = ["label", *[f"I{i}" for i in range(1, 14)], *[f"C{i}" for i in range(1, 27)]]
VOCABULARIES = np.logspace(1, np.log10(2e6), N_CATEGORIES).astype(int)
ROWS_PER_BLOCK = 200_000
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex8(values: np.ndarray) -> np.ndarray:
    """uint32 values as 8 hex digits (bytes), without a Python loop."""
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    digits = (values[:, None] >> shifts) & 0xF
    return np.ascontiguousarray(_HEX[digits]).view("S8").ravel()


class ClickModel:
    """The hidden weights that make labels: one per category value, a few per count."""

    def __init__(self, seed: int):
        rng = np.random.RandomState(seed)
        self.weights = [rng.normal(0, 0.6, size) for size in VOCABULARIES]
        self.count_weights = rng.normal(0, 0.15, N_COUNTS)
        self.salt = rng.randint(1, 2**31, N_CATEGORIES).astype(np.uint32)

    def block(self, rng: np.random.RandomState, n_rows: int) -> pa.Table:
        margin = np.full(n_rows, -1.6)
        columns = {}
        for j in range(N_COUNTS):
            counts = np.floor(rng.lognormal(1.0, 1.2, n_rows))
            margin += self.count_weights[j] * np.log1p(counts)
            present = rng.uniform(size=n_rows) > 0.1
            columns[f"I{j + 1}"] = pa.array(counts.astype(np.int64), mask=~present)
        for j, size in enumerate(VOCABULARIES):
            index = np.minimum(rng.zipf(1.3, n_rows) - 1, size - 1)
            margin += self.weights[j][index]
            codes = (index.astype(np.uint32) * np.uint32(2654435761)) ^ self.salt[j]
            present = rng.uniform(size=n_rows) > 0.05
            columns[f"C{j + 1}"] = pa.array(_hex8(codes), type=pa.binary(), mask=~present)
        label = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-margin))).astype(np.int64)
        return pa.table({"label": label, **columns})


def read_hashed(path: str, n_features: int):
    """``(X, y)`` of a generated file, read and hashed in this process (the in-memory path:
    exactly scikit-learn's ``FeatureHasher``, compiled)."""
    from sklearn_cirrus.data.convert import parse_csv
    from sklearn_cirrus.data.table import TableHasher

    options = dict(
        sep="\t", header=False, names=NAMES, target="label", numeric=NAMES[1:14],
        categorical=NAMES[14:],
    )  # fmt: skip
    with open(path, "rb") as f:
        table, y = parse_csv(f.read(), options, at_file_start=True)
    return TableHasher(n_features)(table).tocsr(), y


def write_criteo_tsv(path: str, n_rows: int, seed: int = 0) -> None:
    """Write ``n_rows`` rows to ``path``; the same seed gives the same file."""
    model = ClickModel(seed)
    rng = np.random.RandomState(seed + 1)
    options = pv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with pv.CSVWriter(path, model.block(rng, 1).schema, write_options=options) as writer:
        for start in range(0, n_rows, ROWS_PER_BLOCK):
            writer.write_table(model.block(rng, min(ROWS_PER_BLOCK, n_rows - start)))


if __name__ == "__main__":
    write_criteo_tsv(sys.argv[1], int(sys.argv[2]))
