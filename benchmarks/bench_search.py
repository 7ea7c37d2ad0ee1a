"""Hyperparameter search on a9a: ServerlessGridSearchCV next to scikit-learn's GridSearchCV.

12 candidates (alpha x eta0 x optimizer) x 3 folds, accuracy. In the same run:
``ServerlessGridSearchCV`` (every fit at once on one pool of process workers, at most 2 in
flight: this machine has 2 cores), ``GridSearchCV(ServerlessSGDClassifier(), n_jobs=2)``,
and ``GridSearchCV(SGDClassifier(loss="log_loss"), n_jobs=2)`` over alpha x eta0 x
learning_rate. Target: the same best parameters as the sklearn search of the same
estimator, or a best score within 0.002.

Run from the repository root: ``python benchmarks/bench_search.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

from _table import machine, print_table
from bench_quality import load
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
GRID = {"alpha": [1e-5, 1e-4, 1e-3], "eta0": [0.05, 0.2], "optimizer": ["adagrad", "momentum"]}
SKLEARN_GRID = {
    "alpha": [1e-5, 1e-4, 1e-3],
    "eta0": [0.05, 0.2],
    "learning_rate": ["constant", "invscaling"],
}


def timed(search, X, y):
    started = time.perf_counter()
    search.fit(X, y)
    return search, time.perf_counter() - started


def main() -> None:
    X, y = load(DATASETS / "a9a.libsvm.gz", 123)
    print(f"machine: {machine()}")
    print(f"a9a train set ({X.shape[0]} rows), 12 candidates x 3 folds, accuracy\n")
    estimator = ServerlessSGDClassifier(random_state=0)
    ours, ours_seconds = timed(
        ServerlessGridSearchCV(estimator, GRID, cv=3, executor="processes", max_workers=2), X, y
    )
    theirs, theirs_seconds = timed(GridSearchCV(estimator, GRID, cv=3, n_jobs=2), X, y)
    plain, plain_seconds = timed(
        GridSearchCV(SGDClassifier(loss="log_loss", random_state=0), SKLEARN_GRID, cv=3, n_jobs=2),
        X,
        y,
    )
    rows = [
        [
            "ServerlessGridSearchCV(processes, max_workers=2)",
            f"{ours_seconds:.2f}",
            ours.best_score_,
            ours.best_params_,
        ],
        [
            "GridSearchCV(ServerlessSGDClassifier(), n_jobs=2)",
            f"{theirs_seconds:.2f}",
            theirs.best_score_,
            theirs.best_params_,
        ],
        [
            "GridSearchCV(SGDClassifier(log_loss), n_jobs=2)",
            f"{plain_seconds:.2f}",
            plain.best_score_,
            plain.best_params_,
        ],
    ]
    print_table(["search", "wall (s)", "best CV accuracy", "best parameters"], rows)
    same = ours.best_params_ == theirs.best_params_
    gap = abs(ours.best_score_ - theirs.best_score_)
    print(
        f"\nsame best parameters as GridSearchCV of the same estimator: {same}; best-score gap "
        f"{gap:.4f} (target: same, or within 0.002); peak invocations in flight "
        f"{ours.peak_workers_}; speed-up over GridSearchCV(ServerlessSGDClassifier): "
        f"{theirs_seconds / ours_seconds:.2f}x"
    )


if __name__ == "__main__":
    main()
