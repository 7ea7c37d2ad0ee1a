"""How a worker trains on one shard: in place on a local store, on a replica, or on
pulled copies.

- In place: the kernel's compiled loop updates the store's own arrays (shared memory, or
  this process's memory for threads), lock-free, one call per shard (Hogwild).
- Replica: against a store that keeps a log of changes (Redis), the worker loads the
  whole model once and trains on it in place as on a local store; every
  ``exchange_every`` minibatches it sends what it changed in the rows they touched and
  applies what the other workers sent (``store/delta_log.py``). The exchange runs in a
  background thread while the next ``exchange_every`` minibatches train, so a worker's
  rows miss at most the others' last two runs; the store copies arrays only. The
  process keeps its replica for the fit's next invocation there (``KEPT_REPLICAS``).
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
from dataclasses import replace
from typing import Protocol

import numpy as np

from ..data import minibatches
from ..data.batch import Batch
from ..data.reader import piece_stop, rows_between
from ..kernels.base import Kernel
from ..model_table import T_SLOT, ModelTable, block_copy, block_of, table_views
from ..model_table._delta import bitmap_words, take_rows, touch
from ..store.base import ParameterStore
from ..store.delta_log import (
    DeltaEntry,
    Exchange,
    SharedRows,
    apply_entry,
    entry_since,
    rows_of,
)
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
# against 0.597 for k=1 and k=8. On replicas (Redis, the Ray actor) the entries carry
# their penalty clocks and are applied to each copy: on 1,000,000 hashed rows, 2
# process workers (shared memory's test log-loss 0.4797-0.4806 over seeds 0-9), k=32
# ended at 0.4795-0.4801 in 19 fits on Redis and the Ray actor, at 0.33-0.44x shared
# memory's speed; k=64 at 0.4797-0.4799 in most fits but 0.4812-0.5030 in 7 of 20,
# until the runs damped their changes of the rows every worker changes (below): since,
# k=64 0.4794-0.4801 on Redis over seeds 0-9 and 0.4797-0.4801 on the Ray actor over
# seeds 0-7 (0.37-0.42x shared memory's speed there, 0.32-0.36x at k=32), k=128
# 0.4798-0.4804 (benchmarks/bench_remote_store.py; docs/benchmarks.md). A kernel may
# say otherwise (``REPLICA_RUNS``): matrix factorization's factors are more sensitive
# to stale rows.
DEFAULT_EXCHANGE_EVERY = 1
REPLICA_EXCHANGE_EVERY = 64
# ... but at least this many exchanges a worker an epoch: on a9a with 4 workers, 32
# minibatches each an epoch, k=64 (one exchange an epoch) ended at accuracy 0.843 and
# log-loss 0.331 where k=16 kept 0.850 and 0.324
REPLICA_EXCHANGES_PER_EPOCH = 8
# ... and at most this over the cube of the workers: each worker's change of a popular
# row is computed from the same stale row and the changes add up, so n workers overshoot
# by up to n times a run's move, from rows the n - 1 others left stale. On 1,000,000
# hashed rows, one epoch, processes on 2 cores (shared memory: 0.4797-0.4799): 2
# workers k=64 0.4793-0.4798; 4 workers k=64 0.7244, k=16 0.4784-0.4879, k=8
# 0.4791-0.4794; 8 workers k=9-16 0.4977-0.4998, k=4 0.4790
REPLICA_RUN_WORKERS_CUBED = 512
# ... and, by default, at most 1 / RUN_RAMP of the samples the model has seen when the run
# starts, RAMP_FIRST_RUN at least: a young model's steps are its largest, and changes
# summed from stale copies cost most then. On ml-latest-small, 2 process workers, test
# RMSE over seeds 0-7 (shared memory 0.8549-0.8552): runs of 32 from the start 0.8570
# (+0.0021) in 0.59 s; with this ramp 0.8562-0.8563 (+0.0011) in 0.64-0.72 s; from 1
# minibatch 0.8560 in 0.76 s; RUN_RAMP=8 from 2 minibatches 0.8557 in 0.69 s
RUN_RAMP = 4
RAMP_FIRST_RUN = 4
# A row every sample touches (an intercept, a feature in most rows) is changed by every
# worker's run at once, each change computed from the same stale value: a run corrects
# it fully, the store's value then overshoots by the others' corrections and swings from
# run to run, a run in flight adding a run's delay. Where the kernel asks
# (``REPLICA_DAMPED_KEYS``), a run's change of a row is damped by ``1 / (1 +
# (SHARED_SPREAD_PER_WORKER * n_workers - 1) * share)``, ``share`` the run's samples that
# touched the row over all: 1 / (2 n_workers) for a row every sample touches (the store's
# error on it then at least halves from run to run), about 1 for rare rows. On 1,000,000
# hashed rows, 2 process workers on Redis, k=64, seeds 0-9: undamped, test log-loss
# 0.4797-0.4803 but 0.4911 in one fit (its margins off by 0.37: the intercept and the
# frequent features); damped at 1 / 2, 1 / 3 and 1 / 4 for a row in every sample:
# 0.4797-0.4808, 0.4796-0.4807 and 0.4797-0.4804 (seed 3: 0.4797), shared memory
# 0.4797-0.4806 (the last in both seed 6's, its data order's). With 4 workers k=32
# still strays (0.4789-0.5225 over seeds 0-3; k=8 0.4794-0.4800): the bound by workers
# above (REPLICA_RUN_WORKERS_CUBED).
SHARED_SPREAD_PER_WORKER = 2
# ... the share taken over this many samples at least: a shorter run moves a row less
# than fully (a small dense model, runs of 100 samples, every row in every sample: damped
# at 1 / 4 its weights were a third of shared memory's after 3 epochs)
SHARED_ROW_RUN_SAMPLES = 4096


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
# model holds them all at once (counted in the memory a worker needs:
# driver.worker_memory_needed). Each fold writes the whole model: at 4 rather than 2,
# half as many. Redis behind a 60 MB/s link, 1,000,000 hashed rows, 2 runs each: 2
# workers 10-17% more samples/s, 4 workers 5-7%, the same test loss; the workers' peak
# memory did not grow (217-246 MB against 223-260 MB). The store tells one worker at a
# time to fold.
FOLD_LOG_SIZE = 4
# ... and at which a worker folds it as an invocation of the fit's last epoch ends: the
# driver, reading the model then, would apply the log first while the fit waits (on the
# Ray actor, 1,000,000 hashed rows, 2 workers: 0.10 s of a 2.4 s fit, 0.04 s with the
# fold); the first worker to end folds while the other still trains. Not at every
# epoch's end: matrix factorization's fits on Redis took 2.87x shared memory's time,
# not 2.6x, writing the model for every invocation.
CLOSING_FOLD_LOG_SIZE = 0.25


# the bytes a change in a replica's entries travels in (the replica keeps the rounded
# changes too, so it stays equal to what the store rebuilds). None: by the width of the
# rows (entry_float_bytes); a number: that, for every table
ENTRY_FLOAT_BYTES: int | None = None
# rows of at least this many values (parameters and optimizer state) travel in half
# precision, narrower ones in single. Half precision (each row's changes scaled to fit
# half floats' range) is as much as a run's changes need and halves matrix
# factorization's entries (51 factors and their AdaGrad state: 210 bytes a row, not
# 412; 2.8-3.0x -> 2.55-2.67x shared memory's time on Redis, RMSE alike); a linear
# model's rows (a weight, its state, its clock) would save 2 bytes of 12 and spend more
# on scaling each row than the bytes cost (the Ray actor store: 325k against 334k
# samples/s over 6 fits each)
HALF_PRECISION_MIN_VALUES = 8


def entry_float_bytes(table: ModelTable) -> int:
    """The bytes a change of ``table``'s rows travels in."""
    if ENTRY_FLOAT_BYTES is not None:
        return ENTRY_FLOAT_BYTES
    values = table.params.shape[1] + (table.state.shape[1] if table.state.shape[0] else 0)
    return 2 if values >= HALF_PRECISION_MIN_VALUES else 4


class Replica:
    """A worker's copy of one key and where it stands in the store's log.

    ``shadowed``: the copy comes with a second one, its *shadow*, of the model as the
    store holds it as far as this worker knows (the entries it sent and received
    applied), for a worker that does not send every change (``significance``): its
    unsent changes are the rows where the copy and the shadow differ."""

    def __init__(self, store, key: str, shadowed: bool = False):
        self.table, self.cursor = store.load_replica(key)
        self.shadow = block_copy(self.table) if shadowed else None
        # the store's counters as last heard, and this copy's as last sent: what the
        # copy's counters gained since is its own steps, not sent yet
        self.store_meta = self.table.meta.copy()
        self.sent_meta = self.table.meta.copy()
        self.folded = 0  # entries folded into the store's base, as last heard
        self.fold_due = False  # the store told this worker to fold its log
        model_bytes = sum(
            array.nbytes for array in (self.table.params, self.table.state, self.table.aux)
        )
        self.fold_at = FOLD_LOG_SIZE * model_bytes
        self.closing_fold_at = max(1, int(CLOSING_FOLD_LOG_SIZE * model_bytes))

    def catch_up(self, answer: Exchange) -> bool:
        """Apply the entries the store's log gained since this copy last heard from it
        (``answer``: an exchange that sent nothing, from ``catching_up``), the copy
        holding nothing unsent; False when a fold took them away (load the model anew
        then)."""
        if answer.entries is None:
            return False
        for entry in answer.entries:
            self.apply(entry)
        self.table.meta[...] = answer.meta
        self.store_meta, self.sent_meta = answer.meta, answer.meta.copy()
        self.cursor, self.folded = answer.end, answer.folded
        return True

    def catching_up(self) -> tuple[bytes, np.ndarray, int, int]:
        """The exchange that asks the store for what this copy missed."""
        return b"", np.zeros_like(self.table.meta), self.cursor, 0

    def apply(self, entry: DeltaEntry | bytes) -> None:
        """Apply an entry (to the copy and its shadow): another worker's, as it
        travels, or the copy's own."""
        apply_entry(self.table, entry)
        if self.shadow is not None:
            apply_entry(self.shadow, entry)

    def unsent(self, rows: np.ndarray) -> DeltaEntry:
        """What this copy changed in ``rows`` and the store has not been sent (a
        shadowed copy's)."""
        before = rows_of(self.shadow, rows)
        return entry_since(self.table, rows, before, entry_float_bytes(self.table))


class _KeptReplicas:
    """Replicas a worker process keeps between the invocations of one model (a pool's
    process, a warm serverless function): the next invocation catches its copy up from
    the store's log rather than loading the whole model again. Only one model's are
    kept, named by the token the driver gives it (anew whenever it writes the model
    again): an invocation for another drops them."""

    def __init__(self):
        self._lock = threading.Lock()
        self.model: str | None = None  # whose replicas are kept
        self._free: list[dict[str, Replica]] = []  # one set a worker thread

    def take(self, model: str) -> dict[str, Replica] | None:
        with self._lock:
            if model != self.model:
                self.model, self._free = model, []
            return self._free.pop() if self._free else None

    def give_back(self, model: str, replicas: dict[str, Replica]) -> None:
        with self._lock:
            if model == self.model:
                self._free.append(replicas)

    def clear(self) -> None:
        """Drop them all (a fit that ran its workers in this process has ended)."""
        with self._lock:
            self.model, self._free = None, []


KEPT_REPLICAS = _KeptReplicas()


class _Exchange(threading.Thread):
    """One exchange with the store for all keys, run beside the next run's training:
    the entries encoded and sent, the others' received (``answers``, by key)."""

    def __init__(self, store, sends: dict[str, tuple[DeltaEntry, np.ndarray, int, int]]):
        super().__init__(name="sklearn-cirrus-exchange", daemon=True)
        self.store, self.sends = store, sends
        self.answers: dict[str, Exchange] = {}
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            requests = {
                key: (entry.to_bytes() if entry.rows.size else b"", *rest)
                for key, (entry, *rest) in self.sends.items()
            }
            self.answers = self.store.exchange_keys(requests)
        except BaseException as error:  # raised in the training thread, by finish()
            self.error = error

    def finish(self) -> dict[str, Exchange]:
        self.join()
        if self.error is not None:
            raise self.error
        return self.answers


class _RowCopies:
    """Copies of a replica's rows from before a run changed them, gathered piece by
    piece into one block kept from run to run: no copy of them all again at the run's
    end, no new block every run. (A replica is one block: ``load_replica``.)"""

    def __init__(self):
        self._block = np.zeros((0, 0))
        self._count = 0

    def add(self, table: ModelTable, rows: np.ndarray) -> None:
        block = block_of(table)
        needed = self._count + rows.size
        if self._block.shape[1] != block.shape[1]:
            self._block = np.zeros((0, block.shape[1]))
        if needed > self._block.shape[0]:
            grown = np.empty((max(needed, 2 * self._block.shape[0]), block.shape[1]))
            grown[: self._count] = self._block[: self._count]
            self._block = grown
        take_rows(block, rows, self._block[self._count : needed])
        self._count = needed

    def take(self, table: ModelTable) -> ModelTable:
        """The copies gathered since the last ``take``, as a table like ``table``."""
        copies = table_views(
            self._block[: self._count], table.params.shape[1], table.optimizer, table.meta.copy()
        )
        self._count = 0
        return copies


class _Run:
    """The run of minibatches a replica trainer is in: the rows it touched so far, per
    key, and their copies from before it touched them. A run can span shards: its rows
    are counted (the samples that touched each), so that a later piece copies only the
    rows new to the run, at zero before it.

    With ``significance`` (the replicas then shadowed), a row's change is sent only
    when it is significant, larger than ``significance`` times the row's value in the
    store in a column (MLLess's significance filter); the others' are *carried*, their rows
    counted still, into the next run, and sent with its changes once significant. The copies
    from before are the shadow's rows then, taken at the run's end."""

    def __init__(
        self,
        replicas: dict[str, Replica],
        significance: float | None = None,
        accumulator_scale: float = 1.0,
        shared_spread: float = 0.0,
        damped_keys: tuple[str, ...] = (),
    ):
        self.accumulator_scale = accumulator_scale
        self.shared_spread = shared_spread
        self.damped_keys = damped_keys if shared_spread > 0.0 else ()
        # per key, the samples of the run that touched each row: a row is in the run
        # (marked) while its count is not zero
        self.counts = {
            key: np.zeros(replica.table.params.shape[0], dtype=np.int32)
            for key, replica in replicas.items()
        }
        self._fresh = {
            key: np.zeros(bitmap_words(counts.size), dtype=np.uint64)
            for key, counts in self.counts.items()
        }
        self.rows: dict[str, list[np.ndarray]] = {key: [] for key in replicas}
        self.before = {key: _RowCopies() for key in replicas}
        self.significance = significance
        self.carried = {key: np.zeros(0, dtype=np.int64) for key in replicas}
        self.samples = 0
        self.length = 0  # samples the run is to train

    def touch(self, tables: dict[str, ModelTable], touches: dict, n_samples: int) -> None:
        """Count the rows a piece of ``n_samples`` samples is about to train (the
        planner's ``touches``), copying those new to the run."""
        for key, table in tables.items():
            ids, every_sample = touches[key]
            new = touch(ids, every_sample, n_samples, self.counts[key], self._fresh[key])
            self.rows[key].append(new)
            if self.significance is None:
                self.before[key].add(table, new)

    def entries(self, replicas: dict[str, Replica], flush: bool = False) -> dict[str, DeltaEntry]:
        """The entries to send for the run (with ``flush``, every change carried too);
        the run is empty again after, but for the rows carried."""
        entries = {}
        for key, replica in replicas.items():
            rows = np.concatenate([*self.rows[key], np.zeros(0, dtype=np.int64)])
            if self.significance is None:
                before = self.before[key].take(replica.table)
                shared = None
                if key in self.damped_keys and self.samples:
                    samples = max(self.samples, SHARED_ROW_RUN_SAMPLES)
                    shared = SharedRows(self.counts[key], samples, self.shared_spread)
                entry = entry_since(
                    replica.table,
                    rows,
                    before,
                    entry_float_bytes(replica.table),
                    self.accumulator_scale,
                    shared,
                )
            else:
                entry = replica.unsent(np.concatenate([rows, self.carried[key]]))
                if not flush:
                    entry, carried = _significant_or_not(entry, replica.shadow, self.significance)
                    self.carried[key] = carried.rows
                apply_entry(replica.shadow, entry)
            self.counts[key][entry.rows] = 0  # (a row carried stays in the run)
            entries[key] = entry
            self.rows[key] = []
        self.samples = 0
        return entries


def _significant_or_not(
    entry: DeltaEntry, shadow: ModelTable, significance: float
) -> tuple[DeltaEntry, DeltaEntry]:
    """``entry``'s rows whose change is larger than ``significance`` times the row's
    value in the store (``shadow``) in some column (a row at zero: any change), and
    the others."""
    values = np.abs(shadow.params[entry.rows])
    significant = (np.abs(entry.params) > significance * values).any(axis=1)
    return entry.where(significant), entry.where(~significant)


class ReplicaTrainer:
    """Trains in place on replicas of the model; its exchange with the store for one run
    of minibatches goes on while the next run trains (bounded: one in flight), so the
    rows a run starts from miss the other workers' last run at most. A run is
    ``exchange_every`` minibatches whatever the shards: a shard shorter than a run (the
    data is cut into shards of a few MB) does not cut the run short.

    ``accumulator_scale``: while a run trains, AdaGrad's accumulators gain each squared
    gradient that many times, standing in for the other workers' (a shared table's
    would gain theirs meanwhile); the run's entries, and the replica after them, hold
    its own once (``OptimizerConfig.accumulator_scale``).

    ``shared_spread``: a run's change of a row is damped by ``1 / (1 + shared_spread *
    share)``, ``share`` the run's samples that touched the row over all, or over
    ``SHARED_ROW_RUN_SAMPLES`` for a shorter run, in the kernel's
    ``REPLICA_DAMPED_KEYS``. The other workers' runs change the rows most samples touch
    (an intercept, the most frequent features) at the same time, each from the same
    stale value, and their changes add up (``SHARED_SPREAD_PER_WORKER``)."""

    def __init__(
        self,
        kernel: Kernel,
        store,
        batch_size: int,
        exchange_every: int = 1,
        model: str | None = None,
        significance: float | None = None,
        ramp: bool = False,
        accumulator_scale: float = 1.0,
        shared_spread: float = 0.0,
        closing_fold: bool = False,
    ):
        self.kernel = kernel
        self.store = store
        self.batch_size = batch_size
        self.exchange_every = exchange_every
        self.significance = significance
        self.ramp = ramp
        self.accumulator_scale = accumulator_scale
        self.shared_spread = shared_spread
        self.closing_fold = closing_fold
        self.planner = kernel.row_planner()
        # the driver's token for the model: with one, this process keeps the replicas
        # for its next invocation (KEPT_REPLICAS)
        self.model = model
        self.replicas: dict[str, Replica] = {}
        self._run: _Run | None = None
        self._report: WorkerReport | None = None  # the last train()'s: close() adds to it
        self._in_flight: _Exchange | None = None

    def train(self, shard: Batch, report: WorkerReport) -> None:
        self._report = report
        if not self.replicas:
            started = time.perf_counter()
            self.replicas = self._kept_replicas() or {
                key: self._load(key) for key in self.kernel.KEYS
            }
            self._run = _Run(
                self.replicas,
                self.significance,
                self.accumulator_scale,
                self.shared_spread,
                getattr(self.kernel, "REPLICA_DAMPED_KEYS", ()),
            )
            report.seconds["pull"] += time.perf_counter() - started
        start, n_samples = 0, shard.n_samples
        while start < n_samples:
            if not self._run.samples:
                self._run.length = self.batch_size * self._run_minibatches()
            # up to the run's end, in whole minibatches from the shard's start
            minibatches_left = -(-(self._run.length - self._run.samples) // self.batch_size)
            stop = piece_stop(start, minibatches_left * self.batch_size, n_samples, self.batch_size)
            batch, start = rows_between(shard, start, stop), stop
            started = time.perf_counter()
            tables = {key: replica.table for key, replica in self.replicas.items()}
            self._run.touch(tables, self.planner.touches(batch), batch.n_samples)
            loss, steps = self.kernel.train_tables(self._training(tables), batch, self.batch_size)
            self._run.samples += batch.n_samples
            report.seconds["compute"] += time.perf_counter() - started
            if self._run.samples >= self._run.length:
                self._end_run(report)
            report.record(loss, batch.n_samples, steps)

    def _training(self, tables: dict[str, ModelTable]) -> dict[str, ModelTable]:
        """``tables`` as the kernel trains them: with the accumulators' scale."""
        if self.accumulator_scale == 1.0:
            return tables
        return {
            key: replace(
                table,
                optimizer=replace(table.optimizer, accumulator_scale=self.accumulator_scale),
            )
            for key, table in tables.items()
        }

    def _run_minibatches(self) -> int:
        """Minibatches of the run about to start: ``exchange_every``; with ``ramp``,
        fewer while the model is young, at most 1 / RUN_RAMP of the samples it has
        seen (its first steps are its largest, and the most harmful to change on
        stale copies)."""
        if not self.ramp:
            return self.exchange_every
        seen = next(iter(self.replicas.values())).table.meta[T_SLOT]
        young = max(RAMP_FIRST_RUN, seen // (RUN_RAMP * self.batch_size))
        return int(min(self.exchange_every, young))

    def _load(self, key: str) -> Replica:
        return Replica(self.store, key, shadowed=self.significance is not None)

    def _end_run(self, report: WorkerReport, flush: bool = False) -> None:
        """Send the run's entries (``flush``: and every change carried), and apply the
        others' that the last exchange brought."""
        started = time.perf_counter()
        entries = self._run.entries(self.replicas, flush)
        computed = time.perf_counter()
        self._finish_exchange(unsent=entries)
        self._start_exchange(entries, closing=flush and self.closing_fold)
        if any(replica.fold_due for replica in self.replicas.values()):
            self._finish_exchange()  # a fold needs a copy with nothing unsent
            self._fold()
        report.seconds["compute"] += computed - started
        report.seconds["push"] += time.perf_counter() - computed

    def _kept_replicas(self) -> dict[str, Replica] | None:
        """The replicas an earlier invocation of this model left in this process,
        brought up to date with the store's log; None when there are none."""
        if self.model is None or (kept := KEPT_REPLICAS.take(self.model)) is None:
            return None
        answers = self.store.exchange_keys(
            {key: replica.catching_up() for key, replica in kept.items()}
        )
        return {
            key: replica if replica.catch_up(answers[key]) else self._load(key)
            for key, replica in kept.items()
        }

    def close(self) -> None:
        """Send the run begun and wait for the exchange in flight: what the worker
        learned is then in the store. A fold the store asked of this worker is done now,
        not left to its claim's end; with ``closing_fold``, the last exchange asks to
        fold a shorter log (``CLOSING_FOLD_LOG_SIZE``), even with nothing left to send.
        The replicas, equal to the store's model as of their last exchange, are kept for
        the process's next invocation."""
        if self._run is not None and (
            self.closing_fold
            or self._run.samples
            or any(rows.size for rows in self._run.carried.values())
        ):
            self._end_run(self._report, flush=True)
        self._finish_exchange()
        self._fold()
        if self.model is not None and self.replicas:
            KEPT_REPLICAS.give_back(self.model, self.replicas)
            self.replicas = {}

    def _start_exchange(self, entries: dict[str, DeltaEntry], closing: bool = False) -> None:
        """Send ``entries`` (``closing``: the invocation's last, which asks to fold a
        shorter log)."""
        sends = {}
        for key, replica in self.replicas.items():
            meta_change = replica.table.meta - replica.sent_meta
            replica.sent_meta = replica.table.meta.copy()
            fold_at = replica.closing_fold_at if closing else replica.fold_at
            sends[key] = (entries[key], meta_change, replica.cursor, fold_at)
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
                self.replicas[key] = fresh = self._load(key)
                fresh.fold_due = answer.fold
                if unsent is not None:  # the run trained meanwhile, on the old copy
                    fresh.apply(unsent[key])  # (in the shadow too: it is sent next)
                    fresh.table.meta += replica.table.meta - replica.sent_meta
                if replica.shadow is not None:  # the changes carried, on the old copy
                    apply_entry(fresh.table, replica.unsent(self._run.carried[key]))
                continue
            for other in answer.entries:
                replica.apply(other)
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
                # (a shadowed copy's shadow: the copy holds changes the store lacks)
                model = replica.table if replica.shadow is None else replica.shadow
                self.store.fold(key, model, replica.folded, replica.cursor)


def make_trainer(
    kernel: Kernel,
    store: ParameterStore,
    batch_size: int,
    exchange_every: int | None = None,
    n_workers: int = 1,
    n_samples: int | None = None,
    model: str | None = None,
    significance: float | None = None,
    closing_fold: bool = False,
) -> Trainer:
    """The way ``kernel`` trains against ``store`` (module doc). The fit's ``n_workers``
    and ``n_samples`` (a dataset's rows an epoch) bound the default run; ``model``, the
    driver's token for the model, lets a replica outlive the invocation;
    ``significance`` filters a replica's changes (``_Run``); with ``closing_fold``, the
    driver reads the model once the invocation ends (``CLOSING_FOLD_LOG_SIZE``)."""
    if all(store.table(key) is not None for key in kernel.KEYS):
        return InPlaceTrainer(kernel, store, batch_size)
    if hasattr(store, "load_replica"):
        every = exchange_every
        if every is None:
            every = _default_replica_run(kernel, batch_size, n_workers, n_samples)
        ramp = exchange_every is None  # (a run length the fit names is kept from the start)
        # (a filtered replica carries changes from run to run: no scale to take back)
        shared = getattr(kernel, "REPLICA_SHARED_ACCUMULATORS", False) and significance is None
        scale = float(n_workers) if shared else 1.0
        damped = bool(getattr(kernel, "REPLICA_DAMPED_KEYS", ())) and significance is None
        spread = SHARED_SPREAD_PER_WORKER * n_workers - 1.0 if damped and n_workers > 1 else 0.0
        return ReplicaTrainer(
            kernel, store, batch_size, every, model, significance, ramp, scale, spread, closing_fold
        )
    every = DEFAULT_EXCHANGE_EVERY if exchange_every is None else exchange_every
    return PulledCopyTrainer(kernel, store, batch_size, every)


def _default_replica_run(
    kernel: Kernel, batch_size: int, n_workers: int, n_samples: int | None
) -> int:
    """Minibatches a replica trainer's run when the fit does not say: the kernel's
    ``REPLICA_RUNS`` by number of workers where it names them, else
    ``REPLICA_EXCHANGE_EVERY`` within the bounds by workers and by data above."""
    runs = getattr(kernel, "REPLICA_RUNS", None)
    if runs is not None:
        return runs.get(n_workers, 1)
    every = min(REPLICA_EXCHANGE_EVERY, REPLICA_RUN_WORKERS_CUBED // n_workers**3)
    if n_samples is not None:
        batches_per_worker = n_samples // (batch_size * n_workers)
        every = min(every, batches_per_worker // REPLICA_EXCHANGES_PER_EPOCH)
    return max(1, every)
