"""How a worker trains on one shard: in place on a local store, or on pulled copies.

- In place: the kernel's compiled loop updates the store's own arrays (shared memory, or
  this process's memory for threads), lock-free, one call per shard (Hogwild).
- Pulled copies: against a remote store (Redis, a Ray actor) the kernel trains each
  minibatch on a copy of the rows it touches, and the worker adds what changed back.

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


class PulledCopyTrainer:
    def __init__(self, kernel: Kernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.planner = kernel.row_planner()

    def train(self, shard: Batch, report: WorkerReport) -> None:
        for batch in minibatches(shard, self.batch_size):
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


def make_trainer(kernel: Kernel, store: ParameterStore, batch_size: int) -> Trainer:
    """The way ``kernel`` trains against ``store`` (module doc)."""
    if all(store.table(key) is not None for key in kernel.KEYS):
        return InPlaceTrainer(kernel, store, batch_size)
    return PulledCopyTrainer(kernel, store, batch_size)
