"""Sparse push and pull rates of the parameter stores, with 1, 2 and 4 concurrent workers.

Each worker process pushes (then pulls) ``ROWS`` distinct rows of a one-column model of
2**20 rows, drawn with power-law popularity like hashed features, ``CALLS`` times, with
the adagrad optimizer. The rate is element-updates (or element-reads) per second over all
workers together. Redis runs on loopback, started by this script.

Run from the repository root: ``python benchmarks/bench_stores.py`` (needs redis-server).
"""

from __future__ import annotations

import multiprocessing
import shutil
import socket
import subprocess
import time

import numpy as np
from _table import machine, print_table

from sklearn_cirrus.store import OptimizerConfig, SharedMemoryStore
from sklearn_cirrus.store.redis_store import RedisStore

N_ROWS = 2**20
ROWS = 1000
CALLS = 200


def _rows(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ROWS + 1)
    weights /= weights.sum()
    return [np.unique(rng.choice(N_ROWS, size=ROWS, p=weights)) for _ in range(CALLS)]


def _work(handle, seed, barrier, results, operation):
    store = handle.connect()
    batches = _rows(seed)
    barrier.wait()
    started = time.perf_counter()
    elements = 0
    for rows in batches:
        if operation == "push":
            store.push("w", np.ones((rows.size, 1)), rows, n_samples=1)
        else:
            store.pull("w", rows)
        elements += rows.size
    results.put((elements, time.perf_counter() - started))


def rate(store, n_workers: int, operation: str) -> float:
    context = multiprocessing.get_context("forkserver")
    barrier, results = context.Barrier(n_workers), context.Queue()
    workers = [
        context.Process(target=_work, args=(store.handle(), seed, barrier, results, operation))
        for seed in range(n_workers)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(e for e, _ in outcomes) / max(s for _, s in outcomes)


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    print(f"machine: {machine()}")
    print(f"{ROWS} distinct power-law rows a call, {CALLS} calls a worker, 1 column, adagrad\n")
    try:
        rows = []
        for name, make in (
            ("shared memory", SharedMemoryStore),
            ("redis (loopback)", lambda: RedisStore(f"redis://127.0.0.1:{port}/0")),
        ):
            for n_workers in (1, 2, 4):
                store = make()
                store.create("w", np.zeros((N_ROWS, 1)), OptimizerConfig("adagrad"))
                push, pull = rate(store, n_workers, "push"), rate(store, n_workers, "pull")
                rows.append([name, n_workers, f"{push:,.0f}", f"{pull:,.0f}"])
                store.delete()
        print_table(["store", "workers", "push element-updates/s", "pull elements/s"], rows)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
