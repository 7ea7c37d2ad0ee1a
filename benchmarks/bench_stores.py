"""Sparse add and pull rates of the parameter stores, with 1, 2 and 4 concurrent workers.

Two shapes of model: a linear model over 2**20 hashed features (one column; 1,000 rows a
call) and the item factors of a recommender (10,000 rows of 51 columns; 500 rows a call).
Each worker process adds deltas to (then pulls) distinct rows drawn with power-law popularity,
``CALLS`` times, with the adagrad optimizer. The rate is element-updates (or
element-reads) per second over all workers together: the stores that serve rows by the
call (shared memory, the Ray actor). Redis serves whole replicas and logs of changes
instead (``store/redis_store.py``): ``bench_remote_store.py`` measures it in training.

Run from the repository root: ``python benchmarks/bench_stores.py``.
"""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
from _table import machine, print_table

from sklearn_cirrus.model_table import ModelTable
from sklearn_cirrus.model_table.optimizers import META_SIZE
from sklearn_cirrus.store import OptimizerConfig, SharedMemoryStore

# (name, rows of the model, columns, rows a call)
SHAPES = [("linear, 2**20 x 1", 2**20, 1, 1000), ("factors, 10,000 x 51", 10_000, 51, 500)]
CALLS = 200


def _rows(seed: int, n_rows: int, per_call: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_rows + 1)
    weights /= weights.sum()
    return [np.unique(rng.choice(n_rows, size=per_call, p=weights)) for _ in range(CALLS)]


def _add_ones(store, rows: np.ndarray, n_cols: int) -> None:
    """What a worker on pulled rows sends back: a delta of every array of those rows."""
    config = store.optimizer("w")
    state = np.ones((rows.size, n_cols)) if config.has_state else np.zeros((0, n_cols))
    delta = ModelTable(
        np.ones((rows.size, n_cols)), state, np.zeros((0, 0)), np.zeros(META_SIZE), config
    )
    store.add_table("w", rows, delta)


def _work(handle, seed, shape, barrier, results, operation):
    _, n_rows, n_cols, per_call = shape
    store = handle.connect()
    batches = _rows(seed, n_rows, per_call)
    barrier.wait()
    started = time.perf_counter()
    elements = 0
    for rows in batches:
        if operation == "add":
            _add_ones(store, rows, n_cols)
        else:
            store.pull("w", rows)
        elements += rows.size * n_cols
    results.put((elements, time.perf_counter() - started))


def rate(store, shape, n_workers: int, operation: str) -> float:
    context = multiprocessing.get_context("forkserver")
    barrier, results = context.Barrier(n_workers), context.Queue()
    workers = [
        context.Process(
            target=_work, args=(store.handle(), seed, shape, barrier, results, operation)
        )
        for seed in range(n_workers)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(e for e, _ in outcomes) / max(s for _, s in outcomes)


def _ray_work(handle, seed, shape, operation):
    _, n_rows, n_cols, per_call = shape
    store = handle.connect()
    batches = _rows(seed, n_rows, per_call)
    started = time.perf_counter()
    for rows in batches:
        if operation == "add":
            _add_ones(store, rows, n_cols)
        else:
            store.pull("w", rows)
    return sum(rows.size for rows in batches) * n_cols, time.perf_counter() - started


def ray_actor_rows() -> list[list]:
    """The same measurements for a store held by a Ray actor, workers as Ray tasks."""
    import ray

    from sklearn_cirrus.store.ray_actor import RayActorStore

    ray.init(num_cpus=4, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    work = ray.remote(num_cpus=1)(_ray_work)
    rows = []
    try:
        for shape in SHAPES:
            for n_workers in (1, 2, 4):
                store = RayActorStore()
                store.create("w", np.zeros(shape[1:3]), OptimizerConfig("adagrad"))
                rates = []
                for operation in ("add", "pull"):
                    outcomes = ray.get(
                        [
                            work.remote(store.handle(), seed, shape, operation)
                            for seed in range(n_workers)
                        ]
                    )
                    rates.append(sum(e for e, _ in outcomes) / max(s for _, s in outcomes))
                rows.append(
                    [shape[0], "ray actor", n_workers, f"{rates[0]:,.0f}", f"{rates[1]:,.0f}"]
                )
                store.delete()
    finally:
        ray.shutdown()
    return rows


def main() -> None:
    print(f"machine: {machine()}")
    print(f"{CALLS} calls a worker, distinct power-law rows, adagrad\n")
    stores = (("shared memory", SharedMemoryStore),)
    rows = []
    for shape in SHAPES:
        for name, make in stores:
            for n_workers in (1, 2, 4):
                store = make()
                store.create("w", np.zeros(shape[1:3]), OptimizerConfig("adagrad"))
                added = rate(store, shape, n_workers, "add")
                pull = rate(store, shape, n_workers, "pull")
                rows.append([shape[0], name, n_workers, f"{added:,.0f}", f"{pull:,.0f}"])
                store.delete()
    try:
        rows += ray_actor_rows()
    except ImportError:
        print("(Ray not installed: no Ray actor rows)")
    print_table(["model", "store", "workers", "add element-updates/s", "pull elements/s"], rows)


if __name__ == "__main__":
    main()
