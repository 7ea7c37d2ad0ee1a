"""A fit's plan before it runs: candidate configurations, each with its predicted time,
worker-seconds, GB-seconds and dollars, from one short probe of the real thing.

The probe is one epoch of the estimator, on one worker of the executor it names, over two
samples of the rows (``PROBE_ROWS`` and a quarter of it): it measures what no table
knows, this data and
model's samples per second of compute, a worker's reading per sample and its fixed cost
per invocation, the driver's staging per row and its own fixed cost, and the worker's
peak memory. The rest is arithmetic, each part of it named in the table's ``assumed``
column:

- an epoch is ``n_samples`` samples of compute and reading, at the probe's rates times
  the worker's CPU share (a platform's ``cpu_share``; 1 locally), plus the fixed cost of
  each of its ``n_workers`` invocations (and a platform's cold start);
- ``n_workers`` workers share ``min(n_workers, cores)`` cores on this machine (a worker
  beyond the cores is billed while it waits for one), and run side by side on a platform;
- staging takes the probe's seconds per row, once;
- ``max_iter`` epochs run (no early stop is predicted).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from .dataset import ShardedDataset
from .executors import Executor, make_executor
from .platforms import AWS_LAMBDA, Platform

# rows the probe trains one epoch on, and a quarter of them (all when there are fewer)
PROBE_ROWS = 40_000


@dataclass(frozen=True)
class Probe:
    """What one probe epoch measured (rates per worker-second; seconds of the probe)."""

    executor: str
    rows: int
    compute_per_sample: float
    io_per_sample: float
    invocation_seconds: float  # an invocation's cost besides compute and reading
    staging_per_row: float
    fit_seconds: float  # the probe fit's cost besides staging and its worker
    peak_worker_memory_mb: float
    seconds: float


def _executor_name(spec) -> str:
    return type(spec).__name__ if isinstance(spec, Executor) else str(spec or "threads")


def probe(estimator, X, y=None) -> Probe:
    """One epoch of a clone of ``estimator`` on one worker of its executor (always on a
    worker: an Executor instance is never kept in process), over a quarter of
    ``PROBE_ROWS`` rows and over all of them: the costs per row are the slopes between
    the two, the fixed costs what is left. A first epoch over a few rows starts what a
    session starts once (a process pool, imports), which the fit planned will not pay."""
    if isinstance(X, ShardedDataset):
        raise NotImplementedError("plan() over a ShardedDataset: give arrays for now")
    executor, owned = make_executor(estimator.get_params()["executor"])
    try:
        model = clone(estimator).set_params(
            max_iter=1, tol=None, n_workers=1, executor=executor, verbose=0
        )
        large = min(X.shape[0], PROBE_ROWS)
        small = max(large // 4, 1)
        _probe_epoch(model, X, y, min(small, 1000))
        runs = {rows: _probe_epoch(model, X, y, rows) for rows in (small, large)}
    finally:
        if owned:
            executor.shutdown()
    (seconds_small, small_report), (seconds, report) = runs[small], runs[large]

    def per_row(key):
        if large == small:
            return report.get(key, 0.0) / large
        slope = (report.get(key, 0.0) - small_report.get(key, 0.0)) / (large - small)
        return max(slope, 0.0)

    compute, io, staging = (
        per_row(k) for k in ("seconds_compute", "seconds_io", "seconds_staging")
    )
    worker_seconds = report["worker_seconds"]
    return Probe(
        executor=_executor_name(estimator.get_params()["executor"]),
        rows=large,
        compute_per_sample=compute,
        io_per_sample=io,
        invocation_seconds=max(worker_seconds - (compute + io) * large, 0.0)
        / max(report["invocations"], 1),
        staging_per_row=staging,
        fit_seconds=max(seconds - staging * large - worker_seconds, 0.0),
        peak_worker_memory_mb=report["peak_worker_memory_mb"],
        seconds=seconds_small + seconds,
    )


def _probe_epoch(model, X, y, rows: int) -> tuple[float, dict]:
    started = time.perf_counter()
    model.fit(X[:rows], None if y is None else np.asarray(y)[:rows])
    return time.perf_counter() - started, model.fit_report_


def predict(
    measured: Probe,
    *,
    n_samples: int,
    epochs: int,
    n_workers: int,
    memory_mb: int,
    platform: Platform | None,
    cores: int,
) -> dict:
    """The predicted figures of one configuration (see the module's assumptions)."""
    share = 1.0 if platform is None else platform.cpu_share(memory_mb)
    per_sample = (measured.compute_per_sample + measured.io_per_sample) / share
    invocations = epochs * n_workers
    start = 0.0 if platform is None else platform.cold_start_seconds
    busy = epochs * n_samples * per_sample + invocations * (measured.invocation_seconds + start)
    if platform is None:
        parallel = min(n_workers, cores)
        worker_seconds = busy * n_workers / parallel  # waiting for a core, billed
    else:
        parallel = n_workers
        worker_seconds = busy
    seconds = measured.fit_seconds + n_samples * measured.staging_per_row + busy / parallel
    gb_seconds = worker_seconds * memory_mb / 1024
    prices = AWS_LAMBDA if platform is None else platform
    return {
        "predicted_seconds": seconds,
        "predicted_worker_seconds": worker_seconds,
        "predicted_gb_seconds": gb_seconds,
        "predicted_cost_usd": prices.cost_usd(gb_seconds, invocations),
        "invocations": invocations,
    }


def plan_table(
    estimator,
    X,
    y=None,
    *,
    n_workers=(1, 2, 4, 8),
    worker_memory_mb=None,
    platform: Platform | None = None,
) -> dict | object:
    """``estimator.plan``'s table: one row per (workers, memory) configuration."""
    measured = probe(estimator, X, y)
    if worker_memory_mb is None:  # the platform's sizes, else the estimator's own
        worker_memory_mb = (
            platform.memory_sizes_mb if platform else estimator.worker_memory_mb or 1024
        )
    memory_sizes = tuple(np.atleast_1d(worker_memory_mb).tolist())
    cores = os.cpu_count() or 1
    rows = []
    for workers in n_workers:
        for memory in memory_sizes:
            figures = predict(
                measured,
                n_samples=X.shape[0],
                epochs=estimator.max_iter,
                n_workers=workers,
                memory_mb=memory,
                platform=platform,
                cores=cores,
            )
            rows.append(
                {
                    "executor": measured.executor,
                    "platform": "this machine" if platform is None else platform.name,
                    "n_workers": workers,
                    "worker_memory_mb": memory,
                    "batch_size": estimator.batch_size,
                    "epochs": estimator.max_iter,
                    **figures,
                    "fits_in_memory": measured.peak_worker_memory_mb <= memory,
                    "measured": (
                        f"probe ({measured.rows} rows, {measured.seconds:.2f} s): "
                        f"{1 / max(measured.compute_per_sample, 1e-12):,.0f} samples/s of "
                        f"compute, {measured.invocation_seconds * 1e3:.1f} ms an invocation, "
                        f"{measured.staging_per_row * 1e6:.2f} us a row to stage, peak "
                        f"{measured.peak_worker_memory_mb:.0f} MB"
                    ),
                    "assumed": (
                        "max_iter epochs; n_workers invocations an epoch; "
                        + (
                            f"{cores} cores shared"
                            if platform is None
                            else f"{platform.cold_start_seconds} s cold start, CPU "
                            f"share {platform.cpu_share(memory):.2f}"
                        )
                    ),
                }
            )
    return _frame(rows)


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _frame(rows: list[dict]):
    """A pandas DataFrame when pandas is there, else a dict of arrays (as cv_results_)."""
    pandas = _pandas()
    if pandas is None:
        return {key: np.array([row[key] for row in rows]) for key in rows[0]}
    return pandas.DataFrame(rows)
