"""plan() against what ran: predicted and measured seconds and worker-seconds.

The hashed click problem (``_problems.hashed_split``, 2**20 features), ServerlessSGDClassifier
at its defaults but ``tol=None, max_iter=5`` (a fixed number of epochs: early stops are not
predicted yet), on processes x1, x2, x4 and threads x2. Each configuration's fit runs 3
times, alternated with the others; the table compares the plan's prediction (probe
included, its cost shown) with the medians. Target (issue "Resources chosen for the
user"): within 25%.

Run from the repository root: ``python benchmarks/bench_plan.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _problems import hashed_split
from _table import machine, print_table

from sklearn_cirrus import ServerlessSGDClassifier

CONFIGS = [("processes", 1), ("processes", 2), ("processes", 4), ("threads", 2)]
REPEATS = 3


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, _, _ = hashed_split(n_rows)
    model = ServerlessSGDClassifier(max_iter=5, tol=None, random_state=0)
    predicted = {}
    for executor in dict(CONFIGS):
        started = time.perf_counter()
        table = model.set_params(executor=executor).plan(X, y, n_workers=(1, 2, 4))
        probe_seconds = time.perf_counter() - started
        for _, row in table.iterrows():
            predicted[executor, row["n_workers"]] = (row, probe_seconds)
    measured = {config: [] for config in CONFIGS}
    for _ in range(REPEATS):
        for executor, workers in CONFIGS:
            clf = model.set_params(executor=executor, n_workers=workers)
            started = time.perf_counter()
            clf.fit(X, y)
            seconds = time.perf_counter() - started
            measured[executor, workers].append((seconds, clf.fit_report_["worker_seconds"]))
    rows, errors = [], []
    for config in CONFIGS:
        row, probe_seconds = predicted[config]
        seconds, worker_seconds = np.median(np.array(measured[config]), axis=0)
        error = (
            row["predicted_seconds"] / seconds - 1,
            row["predicted_worker_seconds"] / worker_seconds - 1,
        )
        errors.extend(abs(e) for e in error)
        rows.append(
            [
                f"{config[0]} x{config[1]}",
                f"{row['predicted_seconds']:.2f}",
                f"{seconds:.2f}",
                f"{error[0]:+.0%}",
                f"{row['predicted_worker_seconds']:.2f}",
                f"{worker_seconds:.2f}",
                f"{error[1]:+.0%}",
                f"{probe_seconds:.2f} ({probe_seconds / seconds:.0%})",
            ]
        )
    print_table(
        [
            "configuration",
            "predicted s",
            "measured s (median)",
            "error",
            "predicted worker-s",
            "measured worker-s",
            "error",
            "plan() s (of the fit)",
        ],
        rows,
    )
    print(f"\nlargest error {max(errors):.0%} (target <= 25%)")
    print(row["measured"])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
