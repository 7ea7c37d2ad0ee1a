"""Whether ``batch_size`` matters enough to be chosen for the user (``batch_size="auto"``).

The hashed click problem (``_problems.hashed_split``, 2**20 features),
``ServerlessSGDClassifier`` at its defaults (it stops by itself) on processes x2, with
``batch_size`` 64, 256 (the default), 1024 and 4096: seconds to the end, epochs, test
log-loss, training samples/s, and the time to the default's own final test log-loss
(within ``TOLERANCE``), with the runs that reached it.
3 runs each, alternated, medians; ratios against the default in the same run.

Run from the repository root: ``python benchmarks/bench_batch_size.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import sys

import numpy as np
from _problems import hashed_split
from _table import machine, print_table
from bench_throughput import TestLossPerEpoch

from sklearn_cirrus import ServerlessSGDClassifier

SIZES = (64, 256, 1024, 4096)
DEFAULT = 256
REPEATS = 3
# how far above the default's final test log-loss a fit counts as there (the spread of
# its own runs)
TOLERANCE = 3e-4


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, X_test, y_test = hashed_split(n_rows)
    runs = {size: [] for size in SIZES}
    for repeat in range(REPEATS):
        for size in SIZES:
            watcher = TestLossPerEpoch(X_test, y_test)
            model = ServerlessSGDClassifier(
                executor="processes", n_workers=2, batch_size=size, random_state=repeat
            )
            model.set_callbacks(watcher).fit(X, y)
            report = model.fit_report_
            runs[size].append((report, watcher.curve))
    # the default's final test log-loss, and its runs' spread above it
    target = np.median([curve[-1][2] for _, curve in runs[DEFAULT]]) + TOLERANCE
    rows, medians = [], {}
    for size in SIZES:
        # (the fit's time, the callback's test log-loss left out)
        seconds = np.median([curve[-1][1] for _, curve in runs[size]])
        epochs = np.median([len(curve) for _, curve in runs[size]])
        loss = np.median([curve[-1][2] for _, curve in runs[size]])
        rate = np.median([r["samples"] / curve[-1][1] for r, curve in runs[size]])
        # the first epoch whose test log-loss is the default's final one or better
        reach = [
            next((s for _, s, test in curve if test <= target), np.nan) for _, curve in runs[size]
        ]
        reached = int(np.isfinite(reach).sum())
        medians[size] = (seconds, np.nanmedian(reach) if reached else np.nan)
        rows.append(
            [
                size,
                f"{seconds:.2f}",
                f"{epochs:.0f}",
                f"{loss:.5f}",
                f"{rate:,.0f}",
                f"{medians[size][1]:.2f} ({reached} of {REPEATS} runs)",
            ]
        )
    print(f"\ndata: {n_rows} rows; processes x2, defaults but batch_size; {REPEATS} runs\n")
    print_table(
        [
            "batch_size",
            "seconds",
            "epochs",
            "test log-loss",
            "samples/s",
            f"s to {target:.5f} (the default's)",
        ],
        rows,
    )
    for size in SIZES:
        if size != DEFAULT:
            seconds, reach = medians[size]
            print(
                f"batch_size={size}: {seconds / medians[DEFAULT][0]:.2f}x the default's time to "
                f"its end, {reach / medians[DEFAULT][1]:.2f}x its time to the default's loss"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
