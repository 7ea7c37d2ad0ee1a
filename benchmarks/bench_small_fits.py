"""Small fits: where training in the calling process beats fanning out to workers.

1. A 1,000-row fit with the defaults (threads executor, which stays in process at this
   size) next to ``SGDClassifier``'s: the target is within 5x its time.
2. Fits of 5 epochs (``tol=None``) on growing data, in process and fanned out to two
   thread workers and to two process workers (warm), to place the size below which a
   fit stays home (``runtime.driver.IN_PROCESS_MAX_BYTES``): dense 20-feature rows and
   sparse hashed rows (2**18 features, ~20 non-zeros).

Each time is the median of ``REPEATS`` fits. Run from the repository root:
``python benchmarks/bench_small_fits.py``.
"""

from __future__ import annotations

import statistics
import time

from _table import machine, print_table
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.data import data_bytes
from sklearn_cirrus.datasets import make_hashed_classification
from sklearn_cirrus.runtime import driver

REPEATS = 5


def seconds(make_model, X, y) -> float:
    times = []
    for _ in range(REPEATS):
        model = make_model()
        started = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fanned_out(make_model, X, y) -> float:
    """The fit's time with the in-process path turned off."""
    threshold = driver.IN_PROCESS_MAX_BYTES
    driver.IN_PROCESS_MAX_BYTES = -1
    try:
        return seconds(make_model, X, y)
    finally:
        driver.IN_PROCESS_MAX_BYTES = threshold


def main() -> None:
    print(f"machine: {machine()}\n")
    X, y = make_classification(n_samples=1000, n_features=20, random_state=0)
    ours = seconds(lambda: ServerlessSGDClassifier(random_state=0), X, y)
    reference = seconds(lambda: SGDClassifier(loss="log_loss", random_state=0), X, y)
    fanned = fanned_out(lambda: ServerlessSGDClassifier(random_state=0), X, y)
    print_table(
        ["1,000 rows x 20 features, defaults", "fit (s)"],
        [
            ["SGDClassifier(loss='log_loss')", reference],
            ["ServerlessSGDClassifier() (stays in process)", ours],
            ["ServerlessSGDClassifier(), fanned out to 2 thread workers", fanned],
        ],
    )
    print(f"\nours / SGDClassifier: {ours / reference:.1f}x (target <= 5x)\n")

    # start the warm worker processes once, as any later fit in a session finds them
    ServerlessSGDClassifier(executor="processes", max_iter=1).fit(X, y)
    rows = []
    for kind in ("dense", "sparse"):
        for n in (1_000, 10_000, 30_000, 100_000, 300_000):
            if kind == "dense":
                X, y = make_classification(n_samples=n, n_features=20, random_state=0)
            else:
                X, y = make_hashed_classification(n, n_features=2**18, nnz_per_row=20)

            def model(executor="threads"):
                return ServerlessSGDClassifier(
                    executor=executor, n_workers=2, max_iter=5, tol=None, random_state=0
                )

            home = seconds(model, X, y)
            threads = fanned_out(model, X, y)
            processes = seconds(lambda: model("processes"), X, y)
            rows.append([kind, n, f"{data_bytes(X) / 2**20:.1f}", home, threads, processes])
    print_table(
        [
            "data",
            "rows",
            "shard bytes (MB)",
            "in process (s)",
            "2 thread workers (s)",
            "2 process workers (s)",
        ],
        rows,
    )
    print(f"\nIN_PROCESS_MAX_BYTES = {driver.IN_PROCESS_MAX_BYTES / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
