"""The worker: a stateless function, as a serverless platform runs it.

It receives a small picklable :class:`WorkerTask` (handles, budgets; no data, no live
connections), connects to the store, streams its shards and trains on each: in place
on a local store's arrays, or on pulled rows it pushes back (see ``trainers``). It
stops when its shards are done, the store's stop flag is up, or its time budget is
spent, and returns a :class:`WorkerReport`. Whatever it learned is already in the store.

The time budget is checked between pieces of a shard, not only between shards, so an
invocation hands back the unfinished rest of a shard (``rows_into_shard``) and any
``worker_timeout`` longer than a few minibatches makes progress, on every executor: the
worker stops itself, whether or not the executor could end it.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from dataclasses import dataclass

from ..data import DataHandle, ShardReader, minibatches
from ..data.batch import Batch
from ..data.reader import rows_between
from ..exceptions import WorkerOutOfMemory
from ..kernels.base import Kernel
from ..store.base import StoreHandle
from .report import WorkerReport
from .trainers import make_trainer

STOP_FLAG = "stop"
# Workers stop training after this fraction of worker_timeout, so that an invocation
# returns by itself rather than being ended by the platform.
TIME_BUDGET_FRACTION = 0.8
# Under a time budget a shard trains in pieces of whole runs (the minibatches between two
# exchanges with the store), the clock read between pieces. A piece starts at one run
# and doubles while it takes under 1/PIECE_SHARE of the budget, up to MAX_PIECE_BATCHES
# minibatches, so that the calls stay few where the budget is long.
PIECE_SHARE = 32
MAX_PIECE_BATCHES = 64
# How often, at most, a worker asks the store whether it should stop.
FLAG_CHECK_SECONDS = 0.05


@dataclass(frozen=True)
class WorkerTask:
    """One invocation's work: which shards to train on and against which store."""

    store: StoreHandle
    data: DataHandle
    kernel: Kernel
    shard_ids: tuple[int, ...]
    # the first shard's rows before this one were trained by an earlier invocation
    first_row: int = 0
    time_budget_s: float | None = None
    prefetch: int = 1
    exchange_every: int | None = None  # minibatches between exchanges with a remote store
    significance: float | None = None  # a replica's changes are sent once this large
    n_workers: int = 1  # the fit's
    # the driver's token for the model as it last wrote it: replicas a worker process
    # keeps between invocations are of one model (trainers.KEPT_REPLICAS)
    model: str | None = None
    # the driver reads the model once this invocation's epoch (the fit's last) ends: the
    # worker's last exchange asks to fold the store's log first (trainers.CLOSING_FOLD_LOG_SIZE)
    last_epoch: bool = False
    # growth of the process's resident memory this invocation may cause, checked by the
    # worker itself where the executor cannot enforce worker_memory_mb (Dask, Ray)
    memory_budget_mb: float | None = None


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _check_memory(task: WorkerTask, baseline_mb: float) -> None:
    grown = _resident_mb() - baseline_mb
    if grown > task.memory_budget_mb:
        raise WorkerOutOfMemory(
            f"worker grew by {grown:.0f} MB, over the {task.memory_budget_mb:.0f} MB "
            "worker_memory_mb leaves it beyond its runtime"
        )


def _close(trainer) -> None:
    """Finish the trainer's sending; when the invocation is failing already, that
    error is the one raised, not one the sending meets on the way out."""
    if sys.exc_info()[1] is None:
        trainer.close()
        return
    with contextlib.suppress(Exception):
        trainer.close()


def _train_until(trainer, shard: Batch, first_row: int, deadline: float, budget: float, report):
    """Train on ``shard`` from ``first_row`` in pieces of whole runs until it is done or
    ``deadline`` has passed (one piece at least); the row reached."""
    run_rows = trainer.batch_size * trainer.exchange_every
    runs, row = 1, first_row
    while row < shard.n_samples:
        started = time.perf_counter()
        # cut as the kernel cuts minibatches: a short tail joins the last piece
        piece = next(minibatches(rows_between(shard, row), run_rows * runs))
        trainer.train(piece, report)
        row += piece.n_samples
        now = time.perf_counter()
        if now > deadline:
            break
        quick = now - started < budget / PIECE_SHARE
        if quick and trainer.exchange_every * runs < MAX_PIECE_BATCHES:
            runs *= 2
    return row


def run_worker(task: WorkerTask) -> WorkerReport:
    """Train on ``task``'s shards until done, stopped or out of time; see module doc."""
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = None if task.time_budget_s is None else started + task.time_budget_s
    report = WorkerReport()
    store = task.store.connect()
    reader = ShardReader(task.data, task.shard_ids, prefetch=task.prefetch)
    trainer = make_trainer(
        task.kernel,
        store,
        task.data.batch_size,
        task.exchange_every,
        task.n_workers,
        task.data.n_samples,
        task.model,
        task.significance,
        closing_fold=task.last_epoch,
    )
    baseline_mb = _resident_mb() if task.memory_budget_mb is not None else 0.0
    last_check = 0.0
    try:
        for position, (_, shard) in enumerate(reader):
            now = time.perf_counter()
            if now - last_check >= FLAG_CHECK_SECONDS:
                last_check = now
                if store.is_flag_set(STOP_FLAG):
                    report.stopped_by = "flag"
                    return report
                if task.memory_budget_mb is not None:
                    _check_memory(task, baseline_mb)
            first_row = task.first_row if position == 0 else 0
            if deadline is None:
                trainer.train(rows_between(shard, first_row), report)
            else:
                reached = _train_until(
                    trainer, shard, first_row, deadline, task.time_budget_s, report
                )
                if reached < shard.n_samples:
                    report.stopped_by, report.rows_into_shard = "budget", reached
                    return report
            report.shards_done += 1
            if deadline is not None and time.perf_counter() > deadline:
                report.stopped_by = "budget"
                return report
        return report
    finally:
        _close(trainer)
        reader.close()
        store.close()
        report.seconds["io"] = reader.seconds_waiting
        report.wall_seconds = time.perf_counter() - started
        report.cpu_seconds = time.process_time() - cpu_started
        report.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
