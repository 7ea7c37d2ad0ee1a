"""A fit's plan before it runs: candidate configurations, each with its predicted time,
worker-seconds, GB-seconds and dollars, from one short probe of the real thing; and the
choice of one of them for ``n_workers="auto"`` / ``worker_memory_mb="auto"``.

The probe is two epochs of the fit's own kernel and optimizer, on one worker of the
executor it names, over the first ``PROBE_ROWS`` rows of its data, and one epoch of two
workers at once: it measures what no table knows, this data and model's seconds of
compute and reading per sample, a worker's fixed cost per invocation and what its first
epoch costs more, what two workers at once cost each other, the driver's staging per
row and its own fixed cost, and the worker's peak memory. The rest is arithmetic, each
part of it named in the table's ``assumed`` column:

- an epoch is ``n_samples`` samples of compute and reading at the probe's rates, plus
  the fixed cost of each of its ``n_workers`` invocations (and a platform's cold start),
  and each worker's first epoch costs what the probe's first cost more;
- on a platform, a worker's vCPUs (``Platform.vcpus``) are a CPU quota: its time
  stretches to its CPU time over its vCPUs where that is longer (the probe's worker,
  with a vCPU for each of its busy threads, used ``cpu_fraction`` CPUs: its training
  and, beside it, its reading ahead or exchanging; what it waits for uses no quota);
  one CPU where the probe could not read it (thread workers);
- ``n_workers`` workers share ``min(n_workers, cores)`` cores on this machine (a worker
  beyond the cores is billed while it waits for one), each of them slowing the others
  as the probe's two workers at once did; they run side by side on a platform;
- staging takes the probe's seconds per row, once; the fit's preparation before it
  (validation, encoding) takes what it took in ``plan()``;
- ``max_iter`` epochs run when ``tol`` is None; else the fewest the stopping rule allows
  (``n_iter_no_change + 1``): a fit that keeps improving runs longer;
- a worker needs the larger of the probe's peak (with ``MEMORY_HEADROOM`` to spare; a
  worker of its own: not a thread, whose peak is its process's) and the executor's
  runtime plus the fit's own shards and model rows.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .data import DataHandle
from .data.staging import DEFAULT_SHARD_BYTES, bytes_per_row, plan_shard_rows
from .executors import Executor, make_executor
from .platforms import AWS_LAMBDA, Platform
from .runtime.driver import TrainingSettings, train, worker_memory_needed

# rows the probe trains one epoch on, and a quarter of them (all when there are fewer)
PROBE_ROWS = 40_000
# on a platform, the probe's vCPUs: one for each thread a worker keeps busy at once
# (training; reading ahead or exchanging beside it), so that it reads what they use
PROBE_VCPUS = 2
# the choices "auto" considers: workers, and memory sizes on this machine (a platform
# names its own)
WORKER_COUNTS = (1, 2, 4, 8)
LOCAL_MEMORY_SIZES_MB = (256, 512, 1024, 2048, 4096)
# a worker's memory above what the probe and the fit's shards say it needs
MEMORY_HEADROOM = 1.25
# "fastest" takes the cheapest of the configurations within this share of the fastest
# (this machine's timings vary by more between two runs)
FASTEST_TIE = 0.03
# costs that differ by less than this share are one cost the price table makes equal
# (below one vCPU, a platform's price per vCPU-second is flat: a smaller worker runs
# longer for the same dollars), apart only by rounding; "cheapest" takes the fastest
PRICE_TIE = 1e-9
OBJECTIVES = ("fastest", "cheapest")
LIMITS = ("deadline", "budget")


@dataclass(frozen=True)
class Probe:
    """What the probe measured (seconds of one whole core; seconds of the probe)."""

    executor: str
    rows: int
    compute_per_sample: float
    io_per_sample: float
    invocation_seconds: float  # an invocation's cost besides compute and reading
    first_epoch_seconds: float  # what a worker's first epoch costs more than the next
    # the CPUs the probe's worker used, its process's CPU time over its time (above 1:
    # threads at once; None where other workers share its process: thread workers)
    cpu_fraction: float | None
    # a sample's cost with two workers at once on this machine, over one worker's (1 where
    # the probe runs no two at once; None: not read, their epoch too short to outweigh its
    # fixed costs)
    contention: float | None
    staging_per_row: float
    fit_seconds: float  # the probe fit's cost besides staging and its worker
    peak_worker_memory_mb: float
    seconds: float
    cost_usd: float = 0.0
    # the fit's own work before training (validation, encoding), as plan() ran it; 0 for
    # "auto", whose fit has done it already
    preparation_seconds: float = 0.0


def executor_name(spec) -> str:
    return type(spec).__name__ if isinstance(spec, Executor) else str(spec or "threads")


def head(data, y, sample_weight, rows: int):
    """The first ``rows`` rows of a fit's data (arrays, or a staged dataset's handle: its
    first shards, the last of them cut)."""
    if not isinstance(data, DataHandle):
        return data[:rows], y[:rows], sample_weight[:rows]
    counts = np.cumsum(data.shard_rows)
    n_shards = int(np.searchsorted(counts, rows)) + 1
    kept = list(data.shard_rows[:n_shards])
    kept[-1] -= int(counts[n_shards - 1]) - rows if counts[n_shards - 1] > rows else 0
    names = data.shard_names or tuple(
        data.shard_url(i).rsplit("/", 1)[1] for i in range(data.n_shards)
    )
    own_rows = data.rows or (None,) * data.n_shards
    rows_kept = list(own_rows[:n_shards])
    if kept[-1] < data.shard_rows[n_shards - 1]:  # rows of the last shard: its first ones
        last = rows_kept[-1]
        rows_kept[-1] = np.arange(kept[-1]) if last is None else np.asarray(last)[: kept[-1]]
    return (
        replace(
            data,
            n_samples=int(sum(kept)),
            shard_rows=tuple(kept),
            shard_names=names[:n_shards],
            shard_digests=None if data.shard_digests is None else data.shard_digests[:n_shards],
            rows=tuple(rows_kept),
        ),
        None,
        None,
    )


def n_rows(data) -> int:
    return data.n_samples if isinstance(data, DataHandle) else data.shape[0]


def probe(
    kernel, data, y, sample_weight, settings: TrainingSettings, init: dict, in_process=False
) -> Probe:
    """Two epochs of ``kernel`` on one worker of the fit's executor (made an Executor
    instance, which is never kept in process; ``in_process``: in this process, as the
    fit planned will run) over the first ``PROBE_ROWS`` rows, then one of two workers at
    once (on two cores or more). The second epoch gives the rates of a worker that has
    the model at hand, as most of a fit's epochs do; the first, what a worker's first
    epoch costs more (touching the model, starting); the two workers, what they cost
    each other (cores' caches and memory, the GIL for threads); the rest of the fit,
    the driver's staging per row and its fixed cost."""
    started = time.perf_counter()
    executor, owned = settings.executor, False
    if not in_process:
        executor, owned = make_executor(settings.executor)  # (an instance: the fit's own)
    epochs: list[dict] = []  # fit_report_ as it stood after each epoch
    probing = replace(
        settings,
        n_workers=1,
        executor=executor,
        max_iter=2,
        tol=None,
        validation_score=None,
        on_epoch=lambda checkpoint: epochs.append(checkpoint.report),  # (None: go on)
        verbose=0,
        deadline_seconds=None,
        budget_usd=None,
        scale_in=False,
    )
    platform = getattr(executor, "platform", None)
    if platform is not None and settings.worker_memory_mb is not None:
        # unthrottled: a CPU quota lets a worker run unpaused for its share of each
        # period, so a probe shorter than a period would time a whole core at any size;
        # predict stretches what it reads by each size's vCPUs
        unthrottled = math.ceil(platform.mb_per_vcpu * PROBE_VCPUS)
        probing = replace(probing, worker_memory_mb=max(settings.worker_memory_mb, unthrottled))
    rows = min(n_rows(data), PROBE_ROWS)
    sample = head(data, y, sample_weight, rows)  # (cut once: both probes train on it)
    parallel = 1 if in_process else min(2, os.cpu_count() or 1)
    try:
        # what a session starts once (a process pool: its runtime is measured in it) is
        # not a cost of the fit planned
        getattr(executor, "runtime_memory_mb", None)
        begun = time.perf_counter()
        report = train(kernel, *sample, probing, init=init).report
        seconds = time.perf_counter() - begun
        reports = [report]
        if parallel > 1:
            side_by_side = replace(probing, n_workers=parallel, max_iter=1, on_epoch=None)
            reports.append(train(kernel, *sample, side_by_side, init=init).report)
    finally:
        if owned:
            executor.shutdown()
    once = epochs[0]

    def second(key):  # the second epoch's share of a total
        return report.get(key, 0.0) - once.get(key, 0.0)

    compute, io = second("seconds_compute") / rows, second("seconds_io") / rows
    warm_worker_seconds = second("worker_seconds")
    invocation = 0.0
    if not in_process:
        invocation = max(warm_worker_seconds - (compute + io) * rows, 0.0)
        invocation /= max(second("invocations"), 1)
    first_epoch = max(once["worker_seconds"] - warm_worker_seconds, 0.0)
    # workers in the driver's process (threads) share its CPU clock and address space
    one_process = in_process or getattr(executor, "in_process", False)
    cpu_fraction = None
    if not one_process and warm_worker_seconds > 0:
        cpu_fraction = second("worker_cpu_seconds") / warm_worker_seconds
    contention = 1.0 if parallel == 1 else None
    if parallel > 1:  # (the two workers' fixed and first-epoch costs as the probe's)
        shared = reports[1]
        # workers in one process touch the new model's pages once between them (one
        # address space); processes, each their own
        first_touches = 1 if one_process else parallel
        fixed = shared["invocations"] * invocation + first_touches * first_epoch
        # an epoch too short for its samples to outweigh its fixed costs tells nothing
        if shared["worker_seconds"] > 2 * fixed:
            per_sample = (shared["worker_seconds"] - fixed) / rows
            contention = max(per_sample / max(compute + io, 1e-12), 1.0)
    staging = report["seconds_staging"]
    memory_gb = (probing.worker_memory_mb or 1024) / 1024
    return Probe(
        executor=executor_name(settings.executor),
        rows=rows,
        compute_per_sample=compute,
        io_per_sample=io,
        invocation_seconds=invocation,
        first_epoch_seconds=first_epoch,
        cpu_fraction=cpu_fraction,
        contention=contention,
        staging_per_row=staging / rows,
        fit_seconds=max(seconds - staging - report["worker_seconds"], 0.0),
        peak_worker_memory_mb=report["peak_worker_memory_mb"],
        seconds=time.perf_counter() - started,
        cost_usd=AWS_LAMBDA.cost_usd(
            sum(r["worker_seconds"] for r in reports) * memory_gb,
            sum(r["invocations"] for r in reports),
        ),
    )


def predict(
    measured: Probe,
    *,
    n_samples: int,
    epochs: int,
    n_workers: int,
    memory_mb: int,
    platform: Platform | None,
    cores: int,
    in_process: bool = False,
) -> dict:
    """The predicted figures of one configuration (see the module's assumptions); a fit
    that stays in process: one thread's epochs, no invocations, nothing billed."""
    stretch = 1.0  # a worker's time over the probe's, under the platform's CPU quota
    if platform is not None:
        on_cpu = 1.0 if measured.cpu_fraction is None else measured.cpu_fraction
        stretch = max(1.0, on_cpu / platform.vcpus(memory_mb))
    per_sample = (measured.compute_per_sample + measured.io_per_sample) * stretch
    first_epoch = measured.first_epoch_seconds * stretch
    around = measured.preparation_seconds + measured.fit_seconds
    if in_process:
        busy = epochs * n_samples * per_sample + first_epoch
        return {
            "predicted_seconds": around + n_samples * measured.staging_per_row + busy,
            "predicted_worker_seconds": busy,
            "predicted_gb_seconds": 0.0,
            "predicted_cost_usd": 0.0,
            "invocations": 0,
        }
    invocations = epochs * n_workers
    start = 0.0 if platform is None else platform.cold_start_seconds
    if platform is None:  # workers at once on this machine slow each other (the probe's)
        contention = 1.0 if measured.contention is None else measured.contention
        per_sample *= 1 + (contention - 1) * (min(n_workers, cores) - 1)
    busy = (
        epochs * n_samples * per_sample
        + invocations * (measured.invocation_seconds * stretch + start)
        + n_workers * first_epoch  # each one's first touch of the model
    )
    if platform is None:
        parallel = min(n_workers, cores)
        worker_seconds = busy * n_workers / parallel  # waiting for a core, billed
    else:
        parallel = n_workers
        worker_seconds = busy
    seconds = around + n_samples * measured.staging_per_row + busy / parallel
    gb_seconds = worker_seconds * memory_mb / 1024
    prices = AWS_LAMBDA if platform is None else platform
    return {
        "predicted_seconds": seconds,
        "predicted_worker_seconds": worker_seconds,
        "predicted_gb_seconds": gb_seconds,
        "predicted_cost_usd": prices.cost_usd(gb_seconds, invocations),
        "invocations": invocations,
    }


def planned_epochs(settings: TrainingSettings) -> int:
    """The epochs a plan predicts: all of them without a stopping rule, else the fewest
    the rule allows."""
    if settings.tol is None:
        return settings.max_iter
    return min(settings.max_iter, settings.n_iter_no_change + 1)


def memory_needed_mb(
    measured: Probe | None, kernel, data, settings: TrainingSettings, runtime_memory_mb: int
) -> int:
    """What a worker of the fit planned needs (see the module's assumptions); before the
    probe (``measured`` None), what its runtime, shards and model rows take."""
    if isinstance(data, DataHandle):
        shard_bytes = data.max_shard_bytes
    else:
        row_bytes = bytes_per_row(data)
        shard_rows = plan_shard_rows(
            data.shape[0], row_bytes, settings.batch_size, 1, DEFAULT_SHARD_BYTES
        )
        shard_bytes = shard_rows * row_bytes
    sparse = data.sparse if isinstance(data, DataHandle) else sp.issparse(data)
    fit_needs = (
        runtime_memory_mb
        + worker_memory_needed(kernel, settings, shard_bytes=shard_bytes, sparse=sparse)[0]
    )
    # (the runtime's share already has its headroom: Executor.runtime_memory_mb)
    # (a worker thread's peak is its whole process's: not a worker's own)
    own_peak = measured is not None and not getattr(settings.executor, "in_process", True)
    peak = measured.peak_worker_memory_mb if own_peak else 0.0
    return max(fit_needs, math.ceil(MEMORY_HEADROOM * peak))


def local_memory_for(needed_mb: int) -> int:
    """The least of this machine's ``LOCAL_MEMORY_SIZES_MB`` that holds ``needed_mb``."""
    return next((size for size in LOCAL_MEMORY_SIZES_MB if size >= needed_mb), needed_mb)


def plan_rows(
    measured: Probe,
    settings: TrainingSettings,
    *,
    n_samples: int,
    n_workers,
    memory_sizes,
    platform: Platform | None,
    memory_needed: int,
    in_process: bool = False,
) -> list[dict]:
    """One row per (workers, memory) configuration: its predicted figures (one row for a
    fit that stays in process: its workers and memory change nothing)."""
    cores = os.cpu_count() or 1
    epochs = planned_epochs(settings)
    unread = measured.contention is None
    if in_process:
        n_workers, memory_sizes = n_workers[:1], memory_sizes[:1]
    rows = []
    for workers in n_workers:
        for memory in memory_sizes:
            figures = predict(
                measured,
                n_samples=n_samples,
                epochs=epochs,
                n_workers=int(workers),
                memory_mb=int(memory),
                platform=platform,
                cores=cores,
                in_process=in_process,
            )
            rows.append(
                {
                    "executor": measured.executor,
                    "path": "in-process" if in_process else "workers",
                    "platform": "this machine" if platform is None else platform.name,
                    "n_workers": int(workers),
                    "worker_memory_mb": int(memory),
                    "batch_size": settings.batch_size,
                    "epochs": epochs,
                    **figures,
                    "memory_needed_mb": memory_needed,
                    "fits_in_memory": memory_needed <= memory,
                    "measured": (
                        f"probe ({measured.rows} rows, {measured.seconds:.2f} s): "
                        f"{1 / max(measured.compute_per_sample, 1e-12):,.0f} samples/s of "
                        f"compute, {measured.invocation_seconds * 1e3:.1f} ms an invocation, "
                        f"{measured.staging_per_row * 1e6:.2f} us a row to stage, "
                        + (
                            f"{measured.preparation_seconds * 1e3:.0f} ms to prepare, "
                            if measured.preparation_seconds
                            else ""
                        )
                        + (
                            "two workers at once not read (too short an epoch), "
                            if measured.contention is None
                            else f"{measured.contention:.2f}x a sample's cost with two "
                            "workers at once, "
                        )
                        + (
                            ""
                            if measured.cpu_fraction is None
                            else f"{measured.cpu_fraction:.2f} CPUs used, "
                        )
                        + f"peak {measured.peak_worker_memory_mb:.0f} MB"
                    ),
                    "assumed": (
                        (
                            "max_iter epochs; "
                            if settings.tol is None
                            else "the fewest epochs the stopping rule allows; "
                        )
                        + (
                            "small data stays in this process: one thread, no invocations"
                            if in_process
                            else "n_workers invocations an epoch; "
                        )
                        + (
                            ""
                            if in_process
                            else f"{cores} cores shared"
                            + (", workers not slowing each other" if unread else "")
                            if platform is None
                            else f"{platform.cold_start_seconds} s cold start, "
                            f"{platform.vcpus(memory):.2f} vCPU (a worker's time stretched "
                            "to its CPU time over them, where longer"
                            + (", one CPU's" if measured.cpu_fraction is None else "")
                            + ")"
                        )
                    ),
                }
            )
    return rows


def check_resources(resources) -> None:
    """Refuse a ``resources`` that is not an objective or a dict of limits."""
    if isinstance(resources, str):
        if resources not in OBJECTIVES:
            raise ValueError(
                f"resources={resources!r}: expected one of {OBJECTIVES} or a dict with "
                f"'deadline' (seconds) and/or 'budget' (dollars)"
            )
        return
    unknown = set(resources) - set(LIMITS)
    if unknown or not resources:
        raise ValueError(
            f"resources={resources!r}: a dict takes 'deadline' (seconds) and/or 'budget' "
            f"(dollars), got {sorted(unknown) or 'nothing'}"
        )
    for key, value in resources.items():
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"resources[{key!r}] must be a positive number, got {value!r}")


def limits_of(resources) -> dict:
    """The fit's deadline and budget that ``resources`` sets (None when it sets none)."""
    given = resources if isinstance(resources, dict) else {}
    return {"deadline_seconds": given.get("deadline"), "budget_usd": given.get("budget")}


def choose(rows: list[dict], resources, spent_seconds=0.0, spent_usd=0.0) -> dict:
    """The row ``resources`` picks among those that fit in memory (all when none does):
    the fastest (the cheapest of those within ``FASTEST_TIE`` of it), the cheapest (the
    fastest of those the price table makes as cheap, ``PRICE_TIE``), the fastest within
    a budget, the cheapest within a deadline (both: the fastest within both); a limit no
    row meets: the row nearest to it. ``spent_*``: what the probe already took of the
    limits."""
    candidates = [row for row in rows if row["fits_in_memory"]] or rows
    seconds = [row["predicted_seconds"] + spent_seconds for row in candidates]
    costs = [row["predicted_cost_usd"] + spent_usd for row in candidates]

    def least(indices, first, then, tie):  # least ``first``; within ``tie`` of it, ``then``
        best = min(first[i] for i in indices)
        tied = [i for i in indices if first[i] <= best * (1 + tie)]
        return min(tied, key=lambda i: (then[i], first[i]))

    def fastest(indices):
        return least(indices, seconds, costs, FASTEST_TIE)

    def cheapest(indices):
        return least(indices, costs, seconds, PRICE_TIE)

    every = range(len(candidates))
    if resources == "cheapest":
        return candidates[cheapest(every)]
    if not isinstance(resources, dict):
        return candidates[fastest(every)]
    deadline, budget = resources.get("deadline"), resources.get("budget")
    within = [
        i
        for i in every
        if (deadline is None or seconds[i] <= deadline) and (budget is None or costs[i] <= budget)
    ]
    if within:
        return candidates[fastest(within) if budget is not None else cheapest(within)]
    return candidates[cheapest(every) if budget is not None else fastest(every)]


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def frame(rows: list[dict]):
    """A pandas DataFrame when pandas is there, else a dict of arrays (as ``cv_results_``)."""
    pandas = _pandas()
    if pandas is None:
        return {key: np.array([row[key] for row in rows]) for key in rows[0]}
    return pandas.DataFrame(rows)
