"""How a worker trains on one shard: in place on a local store, or on pulled copies.

- In place: the kernel's compiled loop updates the store's own arrays (shared memory, or
  this process's memory for threads), lock-free, one call per shard (Hogwild).
- Pulled copies: against a remote store (Redis, a Ray actor) the kernel trains
  ``exchange_every`` minibatches at a time on a copy of the rows they touch, pulled at
  once, and the worker adds what changed back at once: a round trip and a pass of the
  store's work per ``exchange_every`` minibatches rather than per minibatch, for rows
  as stale as that many of the other workers' steps (local accumulation with bounded
  staleness, as in Cirrus and MLLess).

Both run the same compiled maths, so a model does not depend on its store.
"""

from __future__ import annotations

import time
from typing import Protocol

from ..data import minibatches
from ..kernels.base import Batch, Kernel
from ..store.base import ParameterStore
from .report import WorkerReport


class Trainer(Protocol):
    def train(self, shard: Batch, report: WorkerReport) -> None:
        """Train on every minibatch of ``shard``, adding the work done to ``report``."""


class InPlaceTrainer:
    def __init__(self, kernel: Kernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.tables = {key: store.table(key) for key in kernel.KEYS}
        self.batch_size = batch_size

    def train(self, shard: Batch, report: WorkerReport) -> None:
        started = time.perf_counter()
        loss, steps = self.kernel.train_tables(self.tables, shard, self.batch_size)
        report.seconds["compute"] += time.perf_counter() - started
        report.record(loss, shard.n_samples, steps)


# minibatches between exchanges with a remote store when the fit does not say. More is
# faster but, with several workers, sums deltas each computed from the same stale rows
# (and each with the penalty the rows owed): on 200,000 hashed rows, 2 workers, k=32
# gave test log-loss 0.683 against 0.597 for k=1 and k=8 (benchmarks/bench_remote_store.py)
DEFAULT_EXCHANGE_EVERY = 1


class PulledCopyTrainer:
    def __init__(
        self, kernel: Kernel, store: ParameterStore, batch_size: int, exchange_every: int = 1
    ):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.exchange_every = exchange_every
        self.planner = kernel.row_planner()

    def train(self, shard: Batch, report: WorkerReport) -> None:
        # runs of exchange_every minibatches, cut where the kernel cuts minibatches (a
        # run starts at a multiple of batch_size; the shard's last takes its short tail)
        for batch in minibatches(shard, self.batch_size * self.exchange_every):
            started = time.perf_counter()
            rows, local = self.planner(batch)
            tables = {key: self.store.pull_table(key, rows[key]) for key in self.kernel.KEYS}
            before = {key: table.copy() for key, table in tables.items()}
            pulled = time.perf_counter()
            loss, steps = self.kernel.train_tables(tables, local, self.batch_size)
            computed = time.perf_counter()
            for key, table in tables.items():
                self.store.add_table(key, rows[key], table.minus(before[key]))
            report.seconds["pull"] += pulled - started
            report.seconds["compute"] += computed - pulled
            report.seconds["push"] += time.perf_counter() - computed
            report.record(loss, batch.n_samples, steps)


def make_trainer(
    kernel: Kernel, store: ParameterStore, batch_size: int, exchange_every: int | None = None
) -> Trainer:
    """The way ``kernel`` trains against ``store`` (module doc)."""
    if all(store.table(key) is not None for key in kernel.KEYS):
        return InPlaceTrainer(kernel, store, batch_size)
    every = DEFAULT_EXCHANGE_EVERY if exchange_every is None else exchange_every
    return PulledCopyTrainer(kernel, store, batch_size, every)
