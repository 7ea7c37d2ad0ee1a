"""a9a and MovieLens latest-small trained end to end with ``store="redis://..."``.

The same quality bars as with the embedded stores: a9a test accuracy >= 0.845 and
log-loss <= 0.330; MovieLens latest-small (80/20, seed 0) test RMSE <= 0.86. Redis runs on
loopback, started by this script.

Run from the repository root: ``python benchmarks/bench_redis_end_to_end.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _servers import local_redis
from _table import machine, print_table
from bench_quality import load
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from sklearn_cirrus import ServerlessMatrixFactorization, ServerlessSGDClassifier, load_movielens

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    print(f"machine: {machine()}\n")
    X, y = load(DATASETS / "a9a.libsvm.gz", 123)
    X_test, y_test = load(DATASETS / "a9a_t.libsvm.gz", 123)
    ratings, stars = load_movielens(DATASETS / "ml-latest-small_ratings.csv.gz")
    R_train, R_test, s_train, s_test = train_test_split(
        ratings, stars, test_size=0.2, random_state=0
    )
    rows = []
    with local_redis() as url:
        for executor in ("threads", "processes"):
            for n_workers in (1, 2, 4):
                clf = ServerlessSGDClassifier(
                    executor=executor, n_workers=n_workers, store=url, random_state=0
                )
                started = time.perf_counter()
                clf.fit(X, y)
                seconds = time.perf_counter() - started
                loss = log_loss(y_test, clf.predict_proba(X_test))
                rows.append(
                    [
                        "a9a",
                        executor,
                        n_workers,
                        f"accuracy {clf.score(X_test, y_test):.4f}, log-loss {loss:.4f}",
                        f"{seconds:.2f}",
                    ]
                )
        for n_workers in (1, 2, 4):
            model = ServerlessMatrixFactorization(
                executor="processes", n_workers=n_workers, store=url, random_state=0
            )
            started = time.perf_counter()
            model.fit(R_train, s_train)
            seconds = time.perf_counter() - started
            rmse = np.sqrt(np.mean((model.predict(R_test) - s_test) ** 2))
            rows.append(
                ["ml-latest-small", "processes", n_workers, f"RMSE {rmse:.4f}", f"{seconds:.2f}"]
            )
    print_table(["data", "executor", "workers", "test quality", "fit (s)"], rows)


if __name__ == "__main__":
    main()
