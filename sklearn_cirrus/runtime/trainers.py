"""How a worker trains on one shard: in place on a local store, on a replica, or on
pulled copies.

- In place: the kernel's compiled loop updates the store's own arrays (shared memory, or
  this process's memory for threads), lock-free, one call per shard (Hogwild).
- Replica: against a store that keeps a log of changes (Redis), the worker loads the
  whole model once and trains on it in place as on a local store; every
  ``exchange_every`` minibatches it sends what it changed in the rows they touched and
  applies what the other workers sent (``store/delta_log.py``). The exchange runs in a
  background thread while the next ``exchange_every`` minibatches train, so a worker's
  rows miss at most the others' last two runs; the store copies arrays only.
- Pulled copies: against a remote store (Redis, a Ray actor) the kernel trains
  ``exchange_every`` minibatches at a time on a copy of the rows they touch, pulled at
  once, and the worker adds what changed back at once: a round trip and a pass of the
  store's work per ``exchange_every`` minibatches rather than per minibatch, for rows
  as stale as that many of the other workers' steps (local accumulation with bounded
  staleness, as in Cirrus and MLLess).

All run the same compiled maths, so a model does not depend on its store.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import numpy as np

from ..data import minibatches
from ..kernels.base import Batch, Kernel
from ..store.base import ParameterStore
from ..store.delta_log import DeltaEntry, apply_entry, entry_since, rows_of
from .report import WorkerReport


class Trainer(Protocol):
    batch_size: int
    exchange_every: int  # minibatches a run: a piece of a shard given to train is whole runs

    def train(self, shard: Batch, report: WorkerReport) -> None:
        """Train on every minibatch of ``shard``, adding the work done to ``report``."""

    def close(self) -> None:
        """Finish sending what was trained: after it, all of it is in the store."""


class InPlaceTrainer:
    exchange_every = 1  # every step is in the store as it is taken

    def __init__(self, kernel: Kernel, store: ParameterStore, batch_size: int):
        self.kernel = kernel
        self.tables = {key: store.table(key) for key in kernel.KEYS}
        self.batch_size = batch_size

    def train(self, shard: Batch, report: WorkerReport) -> None:
        started = time.perf_counter()
        loss, steps = self.kernel.train_tables(self.tables, shard, self.batch_size)
        report.seconds["compute"] += time.perf_counter() - started
        report.record(loss, shard.n_samples, steps)

    def close(self) -> None:
        pass  # every step is in the store as it is taken


# minibatches between exchanges with a remote store when the fit does not say. On pulled
# copies more is faster but, with several workers, sums deltas each computed from the
# same stale rows: on 200,000 hashed rows, 2 workers, k=32 gave test log-loss 0.683
# against 0.597 for k=1 and k=8. On replicas (Redis) the entries carry their penalty
# clocks and are applied to each copy: on 1,000,000 hashed rows k=1, 16 and 64 gave the
# test loss of shared memory (0.4796-0.4797 against 0.4802), at 38k, 97k and 115k
# samples/s (benchmarks/bench_remote_store.py; docs/benchmarks.md). A kernel may say
# otherwise (``REPLICA_EXCHANGE_EVERY``): matrix factorization's factors are more
# sensitive to stale rows.
DEFAULT_EXCHANGE_EVERY = 1
REPLICA_EXCHANGE_EVERY = 16


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

    def close(self) -> None:
        pass  # every run is pushed before the next


# the size of the log, in models, at which a worker folds it into the store's base: the
# store holds about this many models' worth of entries at most, and a worker loading the
# model holds them all at once (4 did not fit a 2**20-feature model's worker in its
# default memory). The store tells one worker at a time to fold.
FOLD_LOG_SIZE = 1


# whether a replica's entries travel in single precision: a run's changes need no more,
# and the log, the store's traffic and its folds shrink by two fifths (the replica
# keeps the rounded changes too, so it stays equal to what the store rebuilds)
SINGLE_PRECISION_ENTRIES = True


class _Replica:
    """A worker's copy of one key and where it stands in the store's log."""

    def __init__(self, store, key: str):
        self.table, self.cursor = store.load_replica(key)
        # the store's counters as last heard, and this copy's as last sent: what the
        # copy's counters gained since is its own steps, not sent yet
        self.store_meta = self.table.meta.copy()
        self.sent_meta = self.table.meta.copy()
        self.folded = 0  # entries folded into the store's base, as last heard
        self.fold_due = False  # the store told this worker to fold its log
        self.fold_at = FOLD_LOG_SIZE * sum(
            array.nbytes for array in (self.table.params, self.table.state, self.table.aux)
        )


class _Exchange(threading.Thread):
    """One exchange with the store per key, run beside the next run's training."""

    def __init__(self, store, sends: dict[str, tuple[bytes, np.ndarray, int, int]]):
        super().__init__(name="sklearn-cirrus-exchange", daemon=True)
        self.store, self.sends = store, sends
        self.answers: dict = {}
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            for key, (blob, meta_change, cursor, fold_at) in self.sends.items():
                self.answers[key] = self.store.exchange(key, blob, meta_change, cursor, fold_at)
        except BaseException as error:  # raised in the training thread, by finish()
            self.error = error

    def finish(self) -> dict:
        self.join()
        if self.error is not None:
            raise self.error
        return self.answers


class ReplicaTrainer:
    """Trains in place on replicas of the model; its exchange with the store for one run
    of minibatches goes on while the next run trains (bounded: one in flight), so the
    rows a run starts from miss the other workers' last run at most."""

    def __init__(self, kernel: Kernel, store, batch_size: int, exchange_every: int = 1):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.exchange_every = exchange_every
        self.planner = kernel.row_planner()
        self.replicas: dict[str, _Replica] = {}
        self._in_flight: _Exchange | None = None

    def train(self, shard: Batch, report: WorkerReport) -> None:
        if not self.replicas:
            started = time.perf_counter()
            self.replicas = {key: _Replica(self.store, key) for key in self.kernel.KEYS}
            report.seconds["pull"] += time.perf_counter() - started
        for batch in minibatches(shard, self.batch_size * self.exchange_every):
            started = time.perf_counter()
            tables = {key: replica.table for key, replica in self.replicas.items()}
            rows = self.planner.rows(batch)
            before = {key: rows_of(tables[key], rows[key]) for key in tables}
            loss, steps = self.kernel.train_tables(tables, batch, self.batch_size)
            entries = {
                key: entry_since(tables[key], rows[key], before[key], SINGLE_PRECISION_ENTRIES)
                for key in tables
            }
            computed = time.perf_counter()
            self._finish_exchange(unsent=entries)
            self._start_exchange(entries)
            if any(replica.fold_due for replica in self.replicas.values()):
                self._finish_exchange()  # a fold needs a copy with nothing unsent
                self._fold()
            report.seconds["compute"] += computed - started
            report.seconds["push"] += time.perf_counter() - computed
            report.record(loss, batch.n_samples, steps)

    def close(self) -> None:
        """Wait for the exchange in flight: what the worker learned is then in the store.
        A fold the store asked of this worker is done now, not left to its claim's end."""
        self._finish_exchange()
        self._fold()

    def _start_exchange(self, entries: dict[str, DeltaEntry]) -> None:
        sends = {}
        for key, replica in self.replicas.items():
            meta_change = replica.table.meta - replica.sent_meta
            replica.sent_meta = replica.table.meta.copy()
            sends[key] = (entries[key].to_bytes(), meta_change, replica.cursor, replica.fold_at)
        self._in_flight = _Exchange(self.store, sends)

    def _finish_exchange(self, unsent: dict[str, DeltaEntry] | None = None) -> None:
        """Apply what the exchange in flight brought back. ``unsent``: the entries of
        the run trained since, which a replica loaded anew must take too."""
        if self._in_flight is None:
            return
        exchange, self._in_flight = self._in_flight, None
        for key, answer in exchange.finish().items():
            replica = self.replicas[key]
            if answer.entries is None:  # folded past this copy's place: load it anew
                self.replicas[key] = fresh = _Replica(self.store, key)
                fresh.fold_due = answer.fold
                if unsent is not None:  # the run trained meanwhile, on the old copy
                    apply_entry(fresh.table, unsent[key])
                    fresh.table.meta += replica.table.meta - replica.sent_meta
                continue
            for other in answer.entries:
                apply_entry(replica.table, DeltaEntry.from_bytes(other))
            replica.fold_due = replica.fold_due or answer.fold
            # the others' steps: what the store's counters gained beyond this copy's own
            others = answer.meta - replica.store_meta - exchange.sends[key][1]
            replica.table.meta += others
            replica.sent_meta += others
            replica.store_meta = answer.meta
            replica.cursor, replica.folded = answer.end, answer.folded

    def _fold(self) -> None:
        # a log grown to the size of the model is folded into the store's base by the
        # worker the store told to: a fold writes the model; the others read the folded
        # entries kept aside
        for key, replica in self.replicas.items():
            if replica.fold_due:
                replica.fold_due = False
                self.store.fold(key, replica.table, replica.folded, replica.cursor)


def make_trainer(
    kernel: Kernel, store: ParameterStore, batch_size: int, exchange_every: int | None = None
) -> Trainer:
    """The way ``kernel`` trains against ``store`` (module doc)."""
    if all(store.table(key) is not None for key in kernel.KEYS):
        return InPlaceTrainer(kernel, store, batch_size)
    if hasattr(store, "load_replica"):
        every = exchange_every
        if every is None:
            every = getattr(kernel, "REPLICA_EXCHANGE_EVERY", REPLICA_EXCHANGE_EVERY)
        return ReplicaTrainer(kernel, store, batch_size, every)
    every = DEFAULT_EXCHANGE_EVERY if exchange_every is None else exchange_every
    return PulledCopyTrainer(kernel, store, batch_size, every)
