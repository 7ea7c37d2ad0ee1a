"""The driver: stages data, keeps workers in flight, decides when training stops.

:func:`train` is the engine behind every estimator's ``fit``. It stages the data as
shards, creates the model in a fresh store, and keeps ``n_workers`` invocations in
flight, each on a slice of the current epoch's shards. It relaunches invocations that
fail (up to ``max_retries`` times each, then raises with the worker's traceback) or
that return early, counts epochs as shards completed, applies scikit-learn's stopping
rule, and finally pulls the model and removes the store namespace and the shards,
whatever happened.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace

import numpy as np

from ..data import DataHandle, remove, stage
from ..exceptions import WorkerError
from ..executors import Executor, WorkerResources, make_executor
from ..kernels.base import Kernel
from ..store import OptimizerConfig, ParameterStore, make_store
from ..store.shared_memory import shared_memory_root
from .report import WorkerReport
from .stopping import ADAPTIVE_DECAY, StopRule
from .worker import STOP_FLAG, TIME_BUDGET_FRACTION, WorkerTask, run_worker

# Published AWS Lambda (x86, us-east-1) prices, for the cost estimate in fit_report_.
USD_PER_GB_SECOND = 0.0000166667
USD_PER_INVOCATION = 0.20 / 1_000_000


@dataclass
class Checkpoint:
    """Where a fit stands at the end of an epoch: a TrainingResult so far, for watchers."""

    n_iter: int
    loss_curve: list[float]
    validation_scores: list[float]
    report: dict  # fit_report_ so far: worker-seconds, estimated cost...
    pull: Callable[[], dict[str, np.ndarray]]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The model now, read from the store (only when asked: it costs a pull)."""
        return self.pull()


@dataclass
class TrainingSettings:
    """Everything about a fit that is not the model or the data."""

    optimizer: OptimizerConfig
    n_workers: int = 1
    executor: str | Executor | None = None
    store: str | None = None
    batch_size: int = 256
    worker_memory_mb: int | None = 1024
    worker_timeout: float | None = 300.0
    max_iter: int = 1000
    tol: float | None = 1e-3
    n_iter_no_change: int = 5
    shuffle: bool = True
    random_state: int | None = None
    validation_score: Callable[[np.ndarray], float] | None = None
    # called after every epoch with its Checkpoint; returning True stops the fit there
    on_epoch: Callable[[Checkpoint], bool] | None = None
    max_retries: int = 2
    prefetch: int = 1
    data_url: str | None = None
    verbose: int = 0


# estimator parameters that are TrainingSettings fields of the same name
ESTIMATOR_SETTINGS = (
    "n_workers",
    "executor",
    "store",
    "data_url",
    "batch_size",
    "worker_memory_mb",
    "worker_timeout",
    "max_iter",
    "tol",
    "n_iter_no_change",
    "shuffle",
    "verbose",
)


def settings_from(estimator, **overrides) -> TrainingSettings:
    """The settings an estimator's parameters of those names give, with ``overrides``."""
    values = {name: getattr(estimator, name) for name in ESTIMATOR_SETTINGS}
    return TrainingSettings(**{**values, **overrides})


@dataclass
class TrainingResult:
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray | None]
    n_iter: int
    samples_seen: float
    loss_curve: list[float]
    validation_scores: list[float]
    report: dict
    stopped_by_callback: bool = False


@dataclass
class _Invocation:
    epoch: int
    shard_ids: tuple[int, ...]
    attempt: int = 0


@dataclass
class _Epoch:
    shards_left: int
    loss_sum: float = 0.0
    samples: int = 0


def check_worker_memory(
    data: DataHandle, kernel: Kernel, settings: TrainingSettings, executor: Executor
) -> None:
    """Refuse a ``worker_memory_mb`` too small to hold the runtime and one shard."""
    if settings.worker_memory_mb is None:
        return
    # a shard is held decoded and as file bytes, plus the prefetched ones
    data_bytes = data.max_shard_bytes * (settings.prefetch + 2)
    model_bytes = kernel.worker_model_bytes(data.batch_size, data.sparse)
    needed = executor.runtime_memory_mb + math.ceil((data_bytes + model_bytes) / 2**20)
    if settings.worker_memory_mb < needed:
        raise ValueError(
            f"worker_memory_mb={settings.worker_memory_mb} is too small for one batch: a worker "
            f"needs at least {needed} MB ({executor.runtime_memory_mb} MB of runtime, "
            f"{math.ceil(data_bytes / 2**20)} MB for {settings.prefetch + 2} shards of whole "
            f"batches of batch_size={data.batch_size} rows, "
            f"{math.ceil(model_bytes / 2**20)} MB for the model rows it works on); raise "
            "worker_memory_mb"
        )


def _plan_epoch(epoch: int, n_shards: int, n_workers: int, rng: np.random.RandomState | None):
    order = rng.permutation(n_shards) if rng is not None else np.arange(n_shards)
    return [
        _Invocation(epoch, tuple(int(i) for i in part))
        for part in np.array_split(order, min(n_workers, n_shards))
    ]


def _staging_url(settings: TrainingSettings, executor: Executor) -> str:
    """A fresh place for this fit's shards: memory for in-process workers, else a folder."""
    name = f"sklearn-cirrus-{uuid.uuid4().hex}"
    if settings.data_url is not None:
        return f"{settings.data_url.rstrip('/')}/{name}"
    if executor.in_process:
        return f"memory://{name}"
    # memory-backed where possible: local workers read it as fast as the page cache
    return str(shared_memory_root() / name)


def train(
    kernel: Kernel,
    X,
    y: np.ndarray,
    sample_weight: np.ndarray,
    settings: TrainingSettings,
    *,
    init: dict[str, np.ndarray],
    optimizer_state: dict[str, np.ndarray | None] | None = None,
    samples_seen: float = 0.0,
) -> TrainingResult:
    """Train ``kernel``'s model on ``(X, y, sample_weight)`` with serverless workers.

    ``init``, ``optimizer_state`` and ``samples_seen`` give the starting point: the
    initial parameters (one array per store key) and, to resume an earlier fit, the
    optimizer's state and schedule position it returned.
    """
    started = time.perf_counter()
    executor, owns_executor = make_executor(settings.executor)
    try:
        store = make_store(settings.store, in_process=executor.in_process)
        data = None
        try:
            order = None
            if settings.shuffle:
                order = np.random.RandomState(settings.random_state).permutation(X.shape[0])
            data = stage(
                X,
                y,
                sample_weight,
                _staging_url(settings, executor),
                batch_size=settings.batch_size,
                n_workers=settings.n_workers,
                order=order,
            )
            staging_seconds = time.perf_counter() - started
            check_worker_memory(data, kernel, settings, executor)
            rules = kernel.update_rules(settings.optimizer)
            for key, array in init.items():
                state = None if optimizer_state is None else optimizer_state[key]
                store.create(key, array, rules[key], state=state, samples_seen=samples_seen)
            result = _run(kernel, list(init), data, store, executor, settings)
        finally:
            store.delete()
            if data is not None:
                remove(data)
    finally:
        if owns_executor:
            executor.shutdown()
    result.report["seconds_staging"] = staging_seconds
    result.report["wall_seconds"] = time.perf_counter() - started
    return result


def _run(
    kernel: Kernel,
    keys: list[str],
    data: DataHandle,
    store: ParameterStore,
    executor: Executor,
    settings: TrainingSettings,
) -> TrainingResult:
    rng = np.random.RandomState(settings.random_state) if settings.shuffle else None
    resources = WorkerResources(
        memory_mb=settings.worker_memory_mb, timeout_s=settings.worker_timeout
    )
    budget = (
        None if settings.worker_timeout is None else settings.worker_timeout * TIME_BUDGET_FRACTION
    )
    memory_budget = None
    if settings.worker_memory_mb is not None and not (
        executor.enforces_memory or executor.in_process
    ):
        memory_budget = settings.worker_memory_mb - executor.runtime_memory_mb
    base_task = WorkerTask(
        store=store.handle(),
        data=data,
        kernel=kernel,
        shard_ids=(),
        time_budget_s=budget,
        prefetch=settings.prefetch,
        memory_budget_mb=memory_budget,
    )
    rule = StopRule(
        tol=settings.tol,
        n_iter_no_change=settings.n_iter_no_change,
        use_validation=settings.validation_score is not None,
        adaptive=settings.optimizer.learning_rate == "adaptive",
        eta0=settings.optimizer.eta0,
    )
    pending: deque[_Invocation] = deque()
    epochs: dict[int, _Epoch] = {}
    in_flight = {}
    totals = WorkerReport()
    invocations = failures = 0
    loss_curve, scores = [], []
    next_epoch = n_iter = 0
    stopping, error, overflow = False, None, None
    stopped_by_callback = False

    def pull() -> dict[str, np.ndarray]:
        return {key: store.pull(key) for key in keys}

    def submit(invocation: _Invocation) -> None:
        task = replace(base_task, shard_ids=invocation.shard_ids)
        nonlocal invocations
        in_flight[executor.submit(run_worker, task, resources)] = invocation
        invocations += 1

    while True:
        while not stopping and len(in_flight) < settings.n_workers:
            if not pending and next_epoch < settings.max_iter:
                pending.extend(_plan_epoch(next_epoch, data.n_shards, settings.n_workers, rng))
                epochs[next_epoch] = _Epoch(shards_left=data.n_shards)
                next_epoch += 1
            if not pending:
                break
            submit(pending.popleft())
        if not in_flight:
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        # in submission order, so that a sequential fit adds up its losses identically
        for future in [f for f in in_flight if f in done]:
            invocation = in_flight.pop(future)
            try:
                report: WorkerReport = future.result()
            except Exception as exc:
                failures += 1
                if invocation.attempt >= settings.max_retries:
                    error, stopping = exc, True
                    store.set_flag(STOP_FLAG)
                else:
                    pending.appendleft(replace(invocation, attempt=invocation.attempt + 1))
                continue
            totals.absorb(report)
            epoch = epochs[invocation.epoch]
            epoch.loss_sum += report.loss_sum
            epoch.samples += report.samples
            epoch.shards_left -= report.shards_done
            rest = invocation.shard_ids[report.shards_done :]
            if rest and report.stopped_by == "budget":
                pending.appendleft(_Invocation(invocation.epoch, rest))
        # epochs finish in order, each when all of its shards are done
        while not stopping and n_iter in epochs and epochs[n_iter].shards_left == 0:
            epoch = epochs.pop(n_iter)
            n_iter += 1
            loss = epoch.loss_sum / max(epoch.samples, 1)
            if not np.isfinite(loss):
                overflow = ValueError(
                    f"Floating-point under-/overflow occurred at epoch #{n_iter}. Scaling input "
                    "data with StandardScaler or MinMaxScaler might help."
                )
                stopping = True
                store.set_flag(STOP_FLAG)
                break
            loss_curve.append(loss)
            score = None
            if settings.validation_score is not None:
                score = settings.validation_score(pull())
                scores.append(score)
            decision = rule.update(loss, score)
            if settings.verbose:
                shown = "" if score is None else f", validation score {score:.6f}"
                print(
                    f"-- Epoch {n_iter}: avg. loss {loss:.6f}{shown}, "
                    f"{invocations} invocations, {totals.samples} samples"
                )
            if settings.on_epoch is not None and settings.on_epoch(
                Checkpoint(
                    n_iter=n_iter,
                    loss_curve=list(loss_curve),
                    validation_scores=list(scores),
                    report=_report(totals, invocations, failures, settings),
                    pull=pull,
                )
            ):
                stopped_by_callback = decision != "stop" and n_iter < settings.max_iter
                decision = "stop"
            if decision == "decay":
                for key in keys:
                    store.scale_learning_rate(key, ADAPTIVE_DECAY)
            elif decision == "stop" or n_iter >= settings.max_iter:
                stopping = True
                store.set_flag(STOP_FLAG)
    if error is not None:
        _raise_failure(error, settings.max_retries)
    if overflow is not None:
        raise overflow
    return TrainingResult(
        params=pull(),
        optimizer_state={key: store.pull_state(key) for key in keys},
        n_iter=n_iter,
        samples_seen=store.samples_seen(keys[0]),
        loss_curve=loss_curve,
        validation_scores=scores,
        report=_report(totals, invocations, failures, settings),
        stopped_by_callback=stopped_by_callback,
    )


def _raise_failure(error: BaseException, max_retries: int):
    """Raise a worker's failure, typed, with its traceback chained or embedded."""
    if isinstance(error, WorkerError):
        raise error
    raise WorkerError(
        f"a worker invocation failed {max_retries + 1} times; last failure: "
        f"{type(error).__name__}: {error}"
    ) from error


def _report(
    totals: WorkerReport, invocations: int, failures: int, settings: TrainingSettings
) -> dict:
    memory_gb = (settings.worker_memory_mb or 0) / 1024
    gb_seconds = totals.wall_seconds * memory_gb
    return {
        "invocations": invocations,
        "failures": failures,
        "samples": totals.samples,
        "worker_seconds": totals.wall_seconds,
        "gb_seconds": gb_seconds,
        "estimated_cost_usd": gb_seconds * USD_PER_GB_SECOND + invocations * USD_PER_INVOCATION,
        "peak_worker_memory_mb": totals.peak_memory_mb,
        **{f"seconds_{phase}": seconds for phase, seconds in totals.seconds.items()},
    }
