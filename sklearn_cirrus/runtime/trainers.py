"""How a worker trains on one shard: in place, on pulled copies, or by pushing gradients.

- In place: a table kernel updates the store's own arrays (shared memory, or this
  process's memory for threads), lock-free, one compiled call per shard (Hogwild).
- Pulled copies: against a remote store (Redis, a Ray actor) a table kernel trains each
  minibatch on a copy of the rows it touches, and the worker adds what changed back.
- Gradients: a gradient kernel's minibatch gradient is pushed for the store to apply.

All three run the same maths for a kernel, so a model does not depend on its store.
"""

from __future__ import annotations

import time
from typing import Protocol

from ..data import minibatches
from ..kernels.base import Batch, GradientKernel, Kernel, TableKernel
from ..store.base import ParameterStore
from .report import WorkerReport


class Trainer(Protocol):
    def train(self, shard: Batch, report: WorkerReport) -> None:
        """Train on every minibatch of ``shard``, adding the work done to ``report``."""


class InPlaceTrainer:
    def __init__(self, kernel: TableKernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.table = store.table(kernel.KEY)
        self.batch_size = batch_size

    def train(self, shard: Batch, report: WorkerReport) -> None:
        started = time.perf_counter()
        loss, steps = self.kernel.train_table(self.table, shard, self.batch_size)
        report.seconds["compute"] += time.perf_counter() - started
        report.record(loss, shard.n_samples, steps)


class PulledCopyTrainer:
    def __init__(self, kernel: TableKernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.planner = kernel.row_planner()

    def train(self, shard: Batch, report: WorkerReport) -> None:
        key = self.kernel.KEY
        for batch in minibatches(shard, self.batch_size):
            started = time.perf_counter()
            plan, local = self.planner(batch)
            rows = plan[key]
            table = self.store.pull_table(key, rows)
            before = table.copy()
            pulled = time.perf_counter()
            loss, steps = self.kernel.train_table(table, local, self.batch_size)
            computed = time.perf_counter()
            self.store.add_table(key, rows, table.minus(before))
            report.seconds["pull"] += pulled - started
            report.seconds["compute"] += computed - pulled
            report.seconds["push"] += time.perf_counter() - computed
            report.record(loss, batch.n_samples, steps)


class GradientTrainer:
    def __init__(self, kernel: GradientKernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.planner = kernel.row_planner()

    def train(self, shard: Batch, report: WorkerReport) -> None:
        for batch in minibatches(shard, self.batch_size):
            started = time.perf_counter()
            rows, local = self.planner(batch)
            params = {key: self.store.pull(key, key_rows) for key, key_rows in rows.items()}
            pulled = time.perf_counter()
            loss, grads = self.kernel.loss_grad(params, local)
            computed = time.perf_counter()
            for key, grad in grads.items():
                self.store.push(key, grad, rows[key], batch.n_samples)
            report.seconds["pull"] += pulled - started
            report.seconds["compute"] += computed - pulled
            report.seconds["push"] += time.perf_counter() - computed
            report.record(loss, batch.n_samples, 1)


def make_trainer(kernel: Kernel, store: ParameterStore, batch_size: int) -> Trainer:
    """The way ``kernel`` trains against ``store`` (module doc)."""
    if not hasattr(kernel, "train_table"):
        return GradientTrainer(kernel, store, batch_size)
    if store.table(kernel.KEY) is not None:
        return InPlaceTrainer(kernel, store, batch_size)
    return PulledCopyTrainer(kernel, store, batch_size)
