"""A worker's peak memory does not grow with the dataset: 1x and 10x the rows, same limit.

Each fit runs on fresh worker processes (so that a peak is that fit's own) with
``worker_memory_mb`` enforced as an address-space limit; the table gives the peak resident
memory any worker reached, next to the size of the data it trained on.

Run from the repository root: ``python benchmarks/bench_memory.py``.
"""

from __future__ import annotations

from _table import machine, print_table

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.datasets import make_hashed_classification
from sklearn_cirrus.executors import ProcessExecutor

WORKER_MEMORY_MB = 512
BASE_ROWS = 100_000


def main() -> None:
    print(f"machine: {machine()}\n")
    X, y = make_hashed_classification(10 * BASE_ROWS)
    rows, peaks = [], []
    for scale in (1, 10):
        X_part, y_part = X[: scale * BASE_ROWS], y[: scale * BASE_ROWS]
        data_mb = (X_part.data.nbytes + X_part.indices.nbytes + X_part.indptr.nbytes) / 2**20
        with ProcessExecutor() as executor:
            model = ServerlessSGDClassifier(
                executor=executor,
                n_workers=2,
                max_iter=2,
                tol=None,
                worker_memory_mb=WORKER_MEMORY_MB,
                random_state=0,
            )
            model.fit(X_part, y_part)
        peak = model.fit_report_["peak_worker_memory_mb"]
        peaks.append(peak)
        rows.append(
            [
                f"{scale}x ({scale * BASE_ROWS} rows)",
                f"{data_mb:.0f}",
                WORKER_MEMORY_MB,
                f"{peak:.0f}",
                model.fit_report_["failures"],
            ]
        )
    print_table(
        ["dataset", "data (MB)", "worker_memory_mb", "peak worker RSS (MB)", "failures"], rows
    )
    print(
        f"\npeak worker memory, 10x data / 1x data: {peaks[1] / peaks[0]:.2f}x; "
        f"under worker_memory_mb={WORKER_MEMORY_MB}: {max(peaks) < WORKER_MEMORY_MB}"
    )


if __name__ == "__main__":
    main()
