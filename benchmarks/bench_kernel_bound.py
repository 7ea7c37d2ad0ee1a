"""How fast one worker could train at best, next to scikit-learn's one core and ours.

The problem of ``bench_throughput.py`` (1,000,000 hashed rows, 2**20 features, power-law
popularity). Each line is samples/s over the same rows, one core:

- ``SGDClassifier(loss="log_loss")``, 2 epochs;
- our kernel: ``ServerlessSGDClassifier()`` with only ``tol=None``, one sequential
  worker, 2 epochs, its compiled training time (``fit_report_["seconds_compute"]``), and
  the same with ``optimizer="sgd"`` (plain SGD, L2 penalty);
- loops that do only part of a step's work (``_bound.pyx``): reading the model rows
  each sample's prediction needs; plain SGD one sample a step over one double a row;
  AdaGrad one sample a step over the store's 24-byte rows (weight, accumulator, clock),
  over the same rows padded to 32 bytes on aligned lines (no row spans two cache lines),
  and over 16-byte rows with the accumulator and clock in float32 (what a float32
  optimizer state would save; a float32 clock stops counting past 2**24, so this is a
  bound only).

No minibatch bookkeeping, penalty or loss in the loops: a kernel that trains the issue's
objective on these rows cannot be faster than the AdaGrad loop.

Needs Cython (a build dependency of the package) to compile ``_bound.pyx`` at first run.
Run from the repository root: ``python benchmarks/bench_kernel_bound.py [n_rows]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pyximport
from _problems import hashed_split
from _table import machine, print_table
from sklearn.linear_model import SGDClassifier

from sklearn_cirrus import ServerlessSGDClassifier

pyximport.install(language_level=3)  # (_bound.pyxbld: the package's compiler flags)
import _bound  # noqa: E402 (compiled by the line above)

EPOCHS = 2
# a row of the store's linear AdaGrad table: weight, accumulator, penalty clock
STORE_ROW = [("weight", "f8"), ("accumulator", "f8"), ("clock", "f8")]


def best_rate(loop, n_samples: int, repeats: int = 3) -> float:
    """Samples/s of the fastest of ``repeats`` calls of ``loop()``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - started)
    return n_samples / best


def aligned(rows: np.ndarray) -> np.ndarray:
    """``rows``, copied to start on a 64-byte cache line (numpy aligns to 16)."""
    spare = np.empty(rows.nbytes + 64, dtype=np.uint8)
    start = -spare.ctypes.data % 64
    copy = spare[start : start + rows.nbytes].view(rows.dtype)
    copy[...] = rows
    return copy


def main() -> None:
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"machine: {machine()}")
    X, y, _, _ = hashed_split(n_train)
    data, indices = X.data.astype(np.float64), X.indices.astype(np.int32)
    indptr, n_features = X.indptr.astype(np.int64), X.shape[1]

    started = time.perf_counter()
    SGDClassifier(loss="log_loss", max_iter=EPOCHS, tol=None, random_state=0).fit(X, y)
    sklearn_rate = EPOCHS * n_train / (time.perf_counter() - started)

    def kernel_rate(**settings) -> float:
        ours = ServerlessSGDClassifier(
            executor="sequential",
            n_workers=1,
            max_iter=EPOCHS,
            tol=None,
            random_state=0,
            **settings,
        ).fit(X, y)
        return ours.fit_report_["samples"] / ours.fit_report_["seconds_compute"]

    ours_rate = kernel_rate()
    plain_rate = kernel_rate(optimizer="sgd")

    # filled, not zeros: rows never written would all read the one zero page
    store_rows = np.full(3 * n_features, 1e-3)
    single = np.full(n_features, 1e-3)
    row_layouts = {
        "the store's 24-byte rows": STORE_ROW,
        "rows padded to 32 bytes, 64-byte aligned": [
            ("weight", "f8"),
            ("accumulator", "f8"),
            ("clock", "f8"),
            ("padding", "f8"),
        ],
        "float32 accumulator and clock (16-byte rows)": [
            ("weight", "f8"),
            ("accumulator", "f4"),
            ("clock", "f4"),
        ],
    }
    loops = [
        (
            "read the rows of each prediction (24-byte rows)",
            lambda: _bound.predict_only(store_rows, 3, data, indices, indptr),
        ),
        (
            "plain SGD, a sample a step (8-byte rows)",
            lambda: _bound.sgd_per_sample(single, data, indices, indptr),
        ),
    ]
    for name, layout in row_layouts.items():
        table = aligned(np.full(n_features, 1e-3, dtype=layout))
        loops.append(
            (
                f"AdaGrad, a sample a step, {name}",
                lambda table=table: _bound.adagrad_per_sample(table, data, indices, indptr),
            )
        )
    rows = [["SGDClassifier(loss='log_loss'), one core", sklearn_rate, 1.0]]
    rows.append(
        ["ours: one sequential worker's kernel, defaults", ours_rate, ours_rate / sklearn_rate]
    )
    rows.append(["ours: the same, optimizer='sgd'", plain_rate, plain_rate / sklearn_rate])
    for name, loop in loops:
        rate = best_rate(loop, n_train)
        rows.append([f"bound: {name}", rate, rate / sklearn_rate])
    print_table(["loop", "samples/s", "x SGDClassifier"], rows)


if __name__ == "__main__":
    main()
