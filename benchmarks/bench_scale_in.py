"""Scale-in (``scale_in=True``): fewer worker-seconds once the loss curve flattens, at the
same test loss.

The hashed click problem (``_problems.hashed_split``, 2**20 features), ServerlessSGDClassifier
at its defaults (it stops by itself) on processes x2 and x4.

1. The rule: one fit without scale-in, its training loss gain and test log-loss after
   every epoch, and how far the test log-loss still moves from each epoch to the last:
   the epoch where the gain falls under ``limits.SCALE_IN_GAIN`` is where workers stop
   paying for themselves.
2. With and without scale-in, 3 runs each, alternated: worker-seconds, seconds, final
   test log-loss (medians), and the workers of each epoch. Target (issue "Resources
   chosen for the user"): at least 25% fewer worker-seconds, test log-loss within 0.001.

Run from the repository root: ``python benchmarks/bench_scale_in.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import sys

import numpy as np
from _problems import hashed_split
from _table import machine, print_table
from bench_throughput import TestLossPerEpoch
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.runtime.limits import SCALE_IN_GAIN

WORKERS = (2, 4)
REPEATS = 3


def rule_table(X, y, X_test, y_test) -> None:
    watcher = TestLossPerEpoch(X_test, y_test)
    model = ServerlessSGDClassifier(executor="processes", n_workers=2, random_state=0)
    model.set_callbacks(watcher).fit(X, y)
    curve, tests = model.loss_curve_, [loss for _, _, loss in watcher.curve]
    rows = []
    for epoch, (train, test) in enumerate(zip(curve, tests, strict=True)):
        gain = np.nan if epoch == 0 else (curve[epoch - 1] - train) / curve[epoch - 1]
        rows.append(
            [
                epoch + 1,
                f"{train:.5f}",
                "-" if epoch == 0 else f"{100 * gain:.2f}%",
                "yes" if epoch and gain < SCALE_IN_GAIN else "",
                f"{test:.5f}",
                f"{test - tests[-1]:+.5f}",
            ]
        )
    print(f"## The rule: one fit, processes x2 (scale in below a {SCALE_IN_GAIN:.0%} gain)\n")
    print_table(
        ["epoch", "train loss", "gain", "under the rule", "test log-loss", "to the last"], rows
    )


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, X_test, y_test = hashed_split(n_rows)
    ServerlessSGDClassifier(executor="processes", n_workers=4, max_iter=1).fit(X_test, y_test)
    rule_table(X, y, X_test, y_test)
    runs = {(w, s): [] for w in WORKERS for s in (False, True)}
    workers_seen = {}
    for repeat in range(REPEATS):
        for config in runs:
            workers, scale_in = config
            model = ServerlessSGDClassifier(
                executor="processes", n_workers=workers, scale_in=scale_in, random_state=repeat
            ).fit(X, y)
            report = model.fit_report_
            loss = log_loss(y_test, model.predict_proba(X_test))
            runs[config].append((report["worker_seconds"], report["wall_seconds"], loss))
            workers_seen[config] = report["workers_per_epoch"]
    rows, ratios, gaps = [], [], []
    for workers in WORKERS:
        off = np.median(np.array(runs[workers, False]), axis=0)
        on = np.median(np.array(runs[workers, True]), axis=0)
        ratio, gap = on[0] / off[0], on[2] - off[2]
        ratios.append(ratio)
        gaps.append(gap)
        for scale_in, figures in ((False, off), (True, on)):
            rows.append(
                [
                    f"processes x{workers}" + (", scale_in" if scale_in else ""),
                    f"{figures[0]:.2f}",
                    f"{figures[1]:.2f}",
                    f"{figures[2]:.5f}",
                    " ".join(map(str, workers_seen[workers, scale_in])),
                    f"{ratio:.2f}x, {gap:+.5f}" if scale_in else "",
                ]
            )
    print(f"\n## With and without scale-in (medians of {REPEATS}, alternated)\n")
    print_table(
        [
            "configuration",
            "worker-seconds",
            "seconds",
            "test log-loss",
            "workers per epoch (last run)",
            "worker-seconds, loss vs without",
        ],
        rows,
    )
    print(
        f"\nworker-seconds with scale-in: {', '.join(f'{r:.2f}x' for r in ratios)} of without "
        f"(target <= 0.75x); test log-loss {', '.join(f'{g:+.5f}' for g in gaps)} "
        "(target within 0.001)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
