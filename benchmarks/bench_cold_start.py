"""A cold worker's start: a fresh interpreter, the worker runtime's import, the first shard.

Serverless workers start cold, so each phase is measured in a brand-new Python process
(``python -c``), against a shared-memory store and shards staged by this script: the
interpreter alone, then the import of the worker runtime (compiled kernel included),
then connecting and training on one shard of 256 rows of the hashed problem (2**20
features). Each figure is the median of ``REPEATS`` fresh processes. Last, a new process
of the processes executor's pool (forked from its forkserver, as one that replaces a lost
worker), from submit to the result of its first invocation, while this script, which
imports scikit-learn, is the main one. Each figure is the median of ``REPEATS``.

Run from the repository root: ``python benchmarks/bench_cold_start.py``.
"""

from __future__ import annotations

import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table import machine, print_table

from sklearn_cirrus.data import remove, stage
from sklearn_cirrus.datasets import make_hashed_classification
from sklearn_cirrus.executors import ProcessExecutor, WorkerResources
from sklearn_cirrus.kernels import LinearKernel
from sklearn_cirrus.runtime.worker import WorkerTask
from sklearn_cirrus.store import OptimizerConfig, SharedMemoryStore

REPEATS = 7

WORKER = """
import pickle, sys, time
started = time.perf_counter()
from sklearn_cirrus.runtime.worker import run_worker
imported = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    report = run_worker(pickle.load(f))
done = time.perf_counter()
print(imported - started, done - imported, report.samples)
"""


def run_fresh(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - started


_pool = ProcessExecutor()


def new_pool_process(i: int) -> float:
    # a memory limit of its own: no warm process of the pool can take the invocation
    started = time.perf_counter()
    _pool.submit(abs, -1, WorkerResources(memory_mb=2000 + i)).result()
    return time.perf_counter() - started


def main() -> None:
    print(f"machine: {machine()}\n")
    X, y = make_hashed_classification(256)
    kernel = LinearKernel("log_loss", X.shape[1])
    store = SharedMemoryStore()
    data = stage(X, y.astype(float), y * 0.0 + 1.0, tempfile.mkdtemp(), batch_size=256)
    try:
        store.create(
            "model", kernel.init_params()["model"], kernel.update_rules(OptimizerConfig())["model"]
        )
        task_file = Path(tempfile.mkdtemp()) / "task.pkl"
        task_file.write_bytes(pickle.dumps(WorkerTask(store.handle(), data, kernel, (0,))))
        interpreter = statistics.median(run_fresh(["-c", "pass"]) for _ in range(REPEATS))
        phases, totals = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", WORKER, str(task_file)], check=True, capture_output=True
            )
            totals.append(time.perf_counter() - started)
            phases.append([float(v) for v in out.stdout.split()[:2]])
        imports = statistics.median(p[0] for p in phases)
        first_shard = statistics.median(p[1] for p in phases)
        total = statistics.median(totals)
        pool_process = statistics.median(new_pool_process(i) for i in range(REPEATS))
    finally:
        store.delete()
        remove(data)
        _pool.shutdown()
    print_table(
        ["phase (fresh process, median of 7)", "seconds"],
        [
            ["interpreter start and exit (python -c pass)", interpreter],
            ["import of the worker runtime", imports],
            ["connect, read the shard, train on it (256 rows, 2**20 features)", first_shard],
            ["whole cold worker, process start to exit", total],
            ["a new process of the processes executor, submit to first result", pool_process],
        ],
    )
    print(f"\ncold worker: {total:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
