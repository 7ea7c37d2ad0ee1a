"""A 12-candidate x 3-fold search over click logs, staged once, next to GridSearchCV(n_jobs=2).

The data: Criteo-format click logs (``criteo_like.py``, 300k rows), hashed to 2**20
features. In the same run, the same estimator (``ServerlessSGDClassifier`` on 2 process
workers, 5 epochs) and grid (alpha x eta0):

- ``ServerlessGridSearchCV`` over a ``ShardedDataset`` written once from the hashed arrays
  (every candidate x fold reads row views of the same shards);
- ``ServerlessGridSearchCV`` over the arrays themselves (it writes them once as a dataset);
- ``GridSearchCV(n_jobs=2)`` over the arrays (every fit stages its own fold).

Reported: wall seconds, how many times the data was staged (folders of shards written in
shared memory, by this process or any other: datasets and fits' stagings), and the best
parameters and score. Target: one staging, and a shorter wall time than
``GridSearchCV(n_jobs=2)``. The folds are ``KFold(3)``: row ranges, which a fold's view
reads without the other folds' rows.

Run from the repository root: ``python benchmarks/bench_search_dataset.py``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

from _table import machine, print_table
from criteo_like import read_hashed, write_criteo_tsv
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier, ShardedDataset
from sklearn_cirrus.namespaces import shared_memory_root

N_ROWS = 300_000
GRID = {"alpha": [1e-6, 1e-5, 1e-4, 1e-3], "eta0": [0.05, 0.1, 0.2]}
# contiguous folds: row ranges, which a fold's view reads without the other folds' rows
CV = KFold(3)


class StagingCounter:
    """Counts the folders of shards written for workers (fits' stagings and datasets), in
    this process and in any other (GridSearchCV's fits run in joblib's processes): a
    thread lists the shared-memory root, where both go, every 20 ms."""

    def __init__(self):
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        root = shared_memory_root()
        before = set(os.listdir(root))
        while not self._stop.wait(0.02):
            for name in set(os.listdir(root)) - before:
                try:
                    files = os.listdir(root / name)
                except OSError:  # gone already, or a store's file
                    continue
                if any(f.startswith(("shard-", "part-")) for f in files):
                    self.seen.add(name)

    @property
    def count(self) -> int:
        return len(self.seen)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


def _estimator():
    return ServerlessSGDClassifier(
        executor="processes", n_workers=2, max_iter=5, tol=None, random_state=0
    )


def main() -> None:
    print(f"machine: {machine()}\n")
    folder = tempfile.mkdtemp(prefix="bench-search-dataset-")
    path = os.path.join(folder, "clicks.tsv")
    write_criteo_tsv(path, N_ROWS)
    X, y = read_hashed(path, 2**20)
    os.remove(path)
    # the process workers start once, before timing, as the first fit of a session would
    _estimator().set_params(max_iter=1).fit(X[:50_000], y[:50_000])

    rows = []

    def measure(name, run):
        with StagingCounter() as counter:
            started = time.perf_counter()
            search = run()
            seconds = time.perf_counter() - started
        rows.append(
            [name, f"{seconds:.1f}", counter.count, search.best_params_, search.best_score_]
        )
        return seconds

    def on_dataset():
        dataset = ShardedDataset.from_arrays(X, y, str(shared_memory_root() / "bench-dataset"))
        try:
            return ServerlessGridSearchCV(_estimator(), GRID, cv=CV, max_workers=2).fit(dataset)
        finally:
            dataset.remove()

    ours = measure("ServerlessGridSearchCV, dataset", on_dataset)
    measure(
        "ServerlessGridSearchCV, arrays",
        lambda: ServerlessGridSearchCV(_estimator(), GRID, cv=CV, max_workers=2).fit(X, y),
    )
    theirs = measure(
        "GridSearchCV(n_jobs=2), arrays",
        lambda: GridSearchCV(_estimator(), GRID, cv=CV, n_jobs=2).fit(X, y),
    )
    print_table(["search", "wall s", "stagings", "best parameters", "best score"], rows)
    print(f"\nwall time, dataset search / GridSearchCV(n_jobs=2) = {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
