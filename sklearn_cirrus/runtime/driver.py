"""The driver: stages data, keeps workers in flight, decides when training stops.

:func:`train` is the engine behind every estimator's ``fit``. It stages the data as
shards, creates the model in a fresh store, and keeps ``n_workers`` invocations in
flight, each on a slice of the current epoch's shards. It relaunches invocations that
fail, wherever they fail, within the fit's failure budget (see
:func:`failure_budget`; past it, it raises with the worker's traceback), and those
that return early, counts epochs as shards completed, applies scikit-learn's stopping
rule, and finally pulls the model and removes the store namespace and the shards,
whatever happened. Small data stays home: cut into the same shards in memory and
trained by the compiled kernel in this process, with no staging and no invocations.
"""

from __future__ import annotations

import copy
import math
import re
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ..data import DataHandle, data_bytes, shards_in_memory, stage
from ..data.staging import remove_url
from ..exceptions import (
    DamagedData,
    StoreLost,
    WorkerError,
    WorkerLost,
    WorkerOutOfMemory,
    WorkerTimeout,
)
from ..executors import Executor, WorkerResources, make_executor
from ..kernels.base import Kernel
from ..namespaces import namespace_name, remove_leftovers, shared_memory_root
from ..platforms import AWS_LAMBDA
from ..store import MemoryStore, OptimizerConfig, ParameterStore, keeps_a_log, make_store
from .cleanup import Cleanup, sigterm_cleans_up
from .limits import Limits, scaled_in, warn_limit
from .recovery import EpochSaver
from .report import WorkerReport
from .stopping import ADAPTIVE_DECAY, StopRule
from .trainers import FOLD_LOG_SIZE, KEPT_REPLICAS, make_trainer
from .worker import STOP_FLAG, TIME_BUDGET_FRACTION, WorkerTask, run_worker

# Executors whose workers would run in this process anyway; with them, a fit on data
# smaller than this stays home (runs_in_process). Measured in
# benchmarks/bench_small_fits.py: below it, staging and invocations cost more than
# a second worker saves.
IN_PROCESS_EXECUTORS = (None, "threads", "sequential")
IN_PROCESS_MAX_BYTES = 4 * 2**20
# an epoch's mean training loss this many times a model of zeros' is divergence: on
# unit-variance data, step sizes that diverge (eta0=1e6 with hinge, eta0=1e300) gave
# 1e5-1e299 times it in their first epoch, the largest that still trained (eta0=1e3,
# constant) 8 times
DIVERGED_FACTOR = 100.0
# Published AWS Lambda (x86, us-east-1) prices, for the cost estimate in fit_report_.
USD_PER_GB_SECOND = AWS_LAMBDA.usd_per_gb_second
USD_PER_INVOCATION = AWS_LAMBDA.usd_per_invocation


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
    exchange_every: int | None = None
    significance: float | None = None  # a replica's changes sent once this large
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
    # failed invocations a fit always tolerates (see failure_budget)
    max_retries: int = 3
    prefetch: int = 1
    data_url: str | None = None
    verbose: int = 0
    # stop before an epoch that would pass either (see limits.Limits)
    deadline_seconds: float | None = None
    budget_usd: float | None = None
    # halve the workers in flight once the loss curve flattens (see limits.scaled_in)
    scale_in: bool = False
    # the mean loss of a model of zeros on the training targets (Kernel.loss_of_zeros):
    # an epoch's loss over DIVERGED_FACTOR times it means that training diverged
    loss_of_zeros: float | None = None


@dataclass
class TrainingResult:
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray | None]
    n_iter: int
    samples_seen: float
    loss_curve: list[float]
    validation_scores: list[float]
    report: dict


@dataclass
class _Invocation:
    epoch: int
    shard_ids: tuple[int, ...]
    first_row: int = 0  # of the first shard: the rows before it are done


# A fit fails once more than this fraction of the invocations launched so far failed.
FAILURE_FRACTION = 0.5


def failure_budget(launched: int, max_retries: int) -> float:
    """How many failed invocations a fit tolerates after ``launched`` invocations.

    A lost invocation costs only its work since its last push, so it is relaunched
    wherever it failed. A failure that recurs on every try (a bug, a limit too small)
    makes failures outgrow half the launches and ends the fit within a few tries; a
    platform that loses a share of invocations at random (a killer, spot capacity)
    stays under it: at 30% lost, the chance that failures ever outrun the budget is
    about exp(-2 * 0.2 * 3 / 0.21), well under 1% (a random walk of drift -0.2 per
    launch and variance 0.21 starting 3 below the bound).
    """
    return max(max_retries, FAILURE_FRACTION * launched)


@dataclass
class _Epoch:
    shards_left: int
    loss_sum: float = 0.0
    samples: int = 0


def check_worker_memory(
    kernel: Kernel,
    settings: TrainingSettings,
    *,
    shard_bytes: float,
    sparse: bool,
    runtime_memory_mb: int,
) -> None:
    """Refuse a ``worker_memory_mb`` too small to hold the runtime and one shard, whether
    workers or this process (a small fit) train: the same fit must not fail or pass by
    the size of its data."""
    if settings.worker_memory_mb is None:
        return
    needed, data_mb, model_mb = worker_memory_needed(
        kernel, settings, shard_bytes=shard_bytes, sparse=sparse
    )
    needed += runtime_memory_mb
    if settings.worker_memory_mb < needed:
        raise ValueError(
            f"worker_memory_mb={settings.worker_memory_mb} is too small for one batch: a worker "
            f"needs at least {needed} MB ({runtime_memory_mb} MB of runtime, "
            f"{data_mb} MB for {settings.prefetch + 2} shards of whole "
            f"batches of batch_size={settings.batch_size} rows, "
            f"{model_mb} MB for the model rows it works on and loads); raise "
            "worker_memory_mb"
        )


def worker_memory_needed(
    kernel: Kernel, settings: TrainingSettings, *, shard_bytes: float, sparse: bool
) -> tuple[int, int, int]:
    """The MB a worker holds besides its runtime: in all, for shards, for model rows."""
    # a shard is held decoded and as file bytes, plus the prefetched ones
    data_mb = math.ceil(shard_bytes * (settings.prefetch + 2) / 2**20)
    replica_bytes = kernel.worker_model_bytes(settings.batch_size, sparse)
    model_bytes = replica_bytes
    if settings.significance is not None:  # a replica and its shadow (trainers.Replica)
        model_bytes += replica_bytes
    if keeps_a_log(settings.store):
        # loading a replica holds the model's arrays as they arrive and its log: up to
        # FOLD_LOG_SIZE models' worth of entries
        model_bytes += (1 + FOLD_LOG_SIZE) * replica_bytes
    model_mb = math.ceil(model_bytes / 2**20)
    return data_mb + model_mb, data_mb, model_mb


def _plan_epoch(epoch: int, n_shards: int, n_workers: int, rng: np.random.RandomState | None):
    order = rng.permutation(n_shards) if rng is not None else np.arange(n_shards)
    return [
        _Invocation(epoch, tuple(int(i) for i in part))
        for part in np.array_split(order, min(n_workers, n_shards))
    ]


def _staging_url(settings: TrainingSettings, executor: Executor) -> str:
    """A fresh place for this fit's shards: memory for in-process workers, else a folder."""
    name = namespace_name()
    if settings.data_url is not None:
        return f"{settings.data_url.rstrip('/')}/{name}"
    if executor.in_process:
        return f"memory://{name}"
    # memory-backed where possible: local workers read it as fast as the page cache
    return str(shared_memory_root() / name)


def runs_in_process(X, settings: TrainingSettings) -> bool:
    """Whether a fit stays in the calling process: small data, nothing asked of workers.

    Below ``IN_PROCESS_MAX_BYTES`` of data, staging shards and starting invocations cost
    more than the work they would share. An executor or store named other than the
    in-process ones, or an Executor instance, is the user asking for workers: honoured;
    except a search's shared pool (``hosts_small_fits``: a ``ThrottledExecutor``), whose
    small fits (under its ``small_fit_bytes`` where it says) run in their own thread,
    holding one of the pool's slots, and every fit once the pool ``hosts_every_fit`` (a
    search's refit, after its folds ran so).
    """
    return not isinstance(X, DataHandle) and stays_in_process(
        settings.executor, settings.store, settings.data_url, data_bytes(X)
    )


def stays_in_process(executor, store, data_url, n_bytes: float) -> bool:
    """:func:`runs_in_process` for a fit of ``n_bytes`` of arrays (a search asks it of
    its folds before they are cut)."""
    return (
        (executor in IN_PROCESS_EXECUTORS or getattr(executor, "hosts_small_fits", False))
        and store in (None, "memory")
        and data_url is None
        and (
            n_bytes <= in_process_max_bytes(executor) or getattr(executor, "hosts_every_fit", False)
        )
    )


def in_process_max_bytes(executor) -> float:
    """The data size under which a fit on ``executor`` stays home: a hosting pool's own
    ``small_fit_bytes`` where it says, else ``IN_PROCESS_MAX_BYTES``."""
    small = getattr(executor, "small_fit_bytes", None)
    if not getattr(executor, "hosts_small_fits", False) or small is None:
        return IN_PROCESS_MAX_BYTES
    return small


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

    ``X`` may instead be the :class:`DataHandle` of a dataset already in storage (then
    ``y`` and ``sample_weight`` are None): it is read as it is, its rows shuffled by
    the workers every epoch, and left in place.

    ``init``, ``optimizer_state`` and ``samples_seen`` give the starting point: the
    initial parameters (one array per store key) and, to resume an earlier fit, the
    optimizer's state and schedule position it returned. Small data trains in this
    process (:func:`runs_in_process`), in the order one sequential worker would.
    """
    started = time.perf_counter()
    given = X if isinstance(X, DataHandle) else None
    zero = kernel.loss_of_zeros(None, None) if given else kernel.loss_of_zeros(y, sample_weight)
    settings = replace(settings, loss_of_zeros=zero)
    order = None
    if settings.shuffle and given is None:
        order = np.random.RandomState(settings.random_state).permutation(X.shape[0])
    cut = {"batch_size": settings.batch_size, "n_workers": settings.n_workers, "order": order}

    def create_keys(store: ParameterStore) -> None:
        rules = kernel.update_rules(settings.optimizer)
        for key, array in init.items():
            state = None if optimizer_state is None else optimizer_state[key]
            store.create(key, array, rules[key], state=state, samples_seen=samples_seen)

    if runs_in_process(X, settings):
        result, staging_seconds = _train_in_process(
            kernel, (X, y, sample_weight), cut, settings, create_keys, started
        )
    else:
        result, staging_seconds = _train_on_workers(
            kernel, (X, y, sample_weight), cut, settings, create_keys, started
        )
    result.report["seconds_staging"] = staging_seconds
    result.report["wall_seconds"] = time.perf_counter() - started
    return result


def _train_in_process(kernel, arrays, cut, settings, create_keys, started):
    """``train`` on small data: shards of it in this process's memory, a store here, the
    epochs in the order of one sequential worker. ``(result, staging seconds)``."""
    X, y, sample_weight = arrays
    check_worker_memory(
        kernel,
        settings,
        shard_bytes=data_bytes(X),
        sparse=sp.issparse(X),
        # (this process's: a pool of worker processes hosting the fit is not asked,
        # which would start it)
        runtime_memory_mb=Executor.runtime_memory_mb
        if getattr(settings.executor, "hosts_small_fits", False)
        else getattr(settings.executor, "runtime_memory_mb", Executor.runtime_memory_mb),
    )
    # (a search's fit holds its pool slot from its copy of the rows on: no more
    # copies at once than fits training)
    with Cleanup() as cleanup, getattr(settings.executor, "slot", nullcontext)():
        store = MemoryStore()
        cleanup.add(store.delete)
        shards = shards_in_memory(X, y, sample_weight, **cut)
        staging_seconds = time.perf_counter() - started
        create_keys(store)
        between_epochs = getattr(settings.executor, "pass_turn", None)
        result = _run_in_process(kernel, shards, store, settings, started, between_epochs)
    return result, staging_seconds


def _train_on_workers(kernel, arrays, cut, settings, create_keys, started):
    """``train`` on the executor's workers: the store made and claimed, the data staged
    (unless it is a dataset's handle already), the workers' memory checked, the epochs
    fanned out; everything made removed at the end, whatever happens. ``(result,
    staging seconds)``."""
    X, y, sample_weight = arrays
    given = X if isinstance(X, DataHandle) else None
    # what fits killed outright (SIGKILL) left on this machine goes before more comes
    remove_leftovers()
    with sigterm_cleans_up(), Cleanup() as cleanup:
        executor, owns_executor = make_executor(settings.executor)
        if owns_executor:
            cleanup.add(executor.shutdown)
        store = make_store(settings.store, in_process=executor.in_process)
        cleanup.add(store.delete)
        store.claim()
        if executor.in_process:  # the workers' replicas, kept in this process
            cleanup.add(KEPT_REPLICAS.clear)
        data = given
        if given is None:
            url = _staging_url(settings, executor)
            # by URL, so that shards a failed staging wrote go too
            cleanup.add(lambda: remove_url(url))
            data = stage(X, y, sample_weight, url, **cut)
        staging_seconds = time.perf_counter() - started
        check_worker_memory(
            kernel,
            settings,
            shard_bytes=data.max_shard_bytes,
            sparse=data.sparse,
            runtime_memory_mb=executor.runtime_memory_mb,
        )
        result = _run(
            kernel,
            data,
            store,
            executor,
            settings,
            create_keys,
            started,
            reshuffle=given is not None,
        )
    return result, staging_seconds


class _Progress:
    """The epochs of a fit: their losses, validation, the stopping rule and the watchers.

    ``end_epoch`` books a finished epoch and says whether training stops there (and
    why: ``stopped_by``) and how many workers the next epochs get (``n_workers``);
    ``result`` is what the fit returns. ``report()`` gives the cost of the work so far.
    """

    def __init__(
        self,
        kernel: Kernel,
        store: ParameterStore,
        settings: TrainingSettings,
        report,
        started: float,
        create_keys: Callable[[ParameterStore], None] | None = None,
    ):
        self.kernel = kernel
        self.keys = list(kernel.KEYS)
        self.store = store
        self.settings = settings
        self.report = report
        self.rule = StopRule(
            tol=settings.tol,
            n_iter_no_change=settings.n_iter_no_change,
            use_validation=settings.validation_score is not None,
            adaptive=settings.optimizer.learning_rate == "adaptive",
            eta0=settings.optimizer.eta0,
        )
        self.n_iter = 0
        self.loss_curve: list[float] = []
        self.scores: list[float] = []
        self.saver = EpochSaver(store, self.keys, create_keys, self.rule)
        self.limits = Limits(settings.deadline_seconds, settings.budget_usd, started)
        self.stopped_by: str | None = None
        self.n_workers = settings.n_workers
        self.workers_per_epoch: list[int] = []
        self.diverged = False

    def pull(self) -> dict[str, np.ndarray]:
        return self.kernel.read(self.store)

    def end_epoch(self, loss_sum: float, samples: int) -> bool:
        """Book one epoch; True when training stops after it. Raises on overflow."""
        settings = self.settings
        self.n_iter += 1
        loss = loss_sum / max(samples, 1)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"Floating-point under-/overflow occurred at epoch #{self.n_iter}. Scaling "
                "input data with StandardScaler or MinMaxScaler might help."
            )
        self.loss_curve.append(loss)
        self._warn_if_diverged(loss)
        score = None
        if settings.validation_score is not None:
            score = settings.validation_score(self.pull())
            self.scores.append(score)
        decision = self.rule.update(loss, score)
        if settings.verbose:
            shown = "" if score is None else f", validation score {score:.6f}"
            report = self.report()
            print(
                f"-- Epoch {self.n_iter}: avg. loss {loss:.6f}{shown}, "
                f"{report['invocations']} invocations, {report['samples']} samples"
            )
        stop = settings.on_epoch is not None and settings.on_epoch(
            Checkpoint(
                n_iter=self.n_iter,
                loss_curve=list(self.loss_curve),
                validation_scores=list(self.scores),
                report=self.report(),
                pull=self.pull,
            )
        )
        if not stop and decision == "decay":
            for key in self.keys:
                self.store.scale_learning_rate(key, ADAPTIVE_DECAY)
        self.stopped_by = self._stopped_by(bool(stop), decision)
        self.workers_per_epoch.append(self.n_workers)
        if settings.scale_in:
            self.n_workers = scaled_in(self.n_workers, self.loss_curve)
        stops = self.stopped_by is not None
        self.saver.save(self.n_iter, self.rule, last=stops)
        return stops

    def _warn_if_diverged(self, loss: float) -> None:
        """A ConvergenceWarning at the first epoch whose loss says that training
        diverged (scikit-learn's SGD raises only once the weights overflow)."""
        zero, optimizer = self.settings.loss_of_zeros, self.settings.optimizer
        if self.diverged or not zero or loss <= DIVERGED_FACTOR * zero:
            return
        self.diverged = True
        step = (
            "scale X (StandardScaler)"
            if optimizer.learning_rate == "optimal"
            else f"lower the step size eta0={optimizer.eta0:g} or scale X (StandardScaler)"
        )
        warnings.warn(
            f"training diverged at epoch {self.n_iter}: its mean loss, {loss:.3g}, is over "
            f"{DIVERGED_FACTOR:g} times a model of zeros' ({zero:.3g}); {step}",
            ConvergenceWarning,
            stacklevel=2,
        )

    def _stopped_by(self, callback: bool, decision: str) -> str | None:
        """Why training stops after this epoch (None: it goes on)."""
        if callback:
            return "callback"
        if decision == "stop":
            return "tol"
        if self.n_iter >= self.settings.max_iter:
            return "max_iter"
        if not self.limits.any:
            return None
        limit = self.limits.reached(self.report()["estimated_cost_usd"])
        if limit is not None:
            warn_limit(limit, self.n_iter, self.limits)
        return limit

    def roll_back(self) -> int:
        """After the store lost the model: put the saved epoch back, forget the epochs
        since; the epoch to train next."""
        saved = self.saver.put_back(during_epoch=self.n_iter + 1)
        self.n_iter = saved.n_iter
        del self.loss_curve[saved.n_iter :], self.scores[saved.n_iter :]
        self.rule = copy.deepcopy(saved.rule)
        return saved.n_iter

    def result(self) -> TrainingResult:
        # the last epoch's tables when the saver has just read them (a remote store)
        store = self.saver.epoch(self.n_iter) or self.store
        return TrainingResult(
            params=self.kernel.read(store),
            optimizer_state={key: store.pull_state(key) for key in self.keys},
            n_iter=self.n_iter,
            samples_seen=store.samples_seen(self.keys[0]),
            loss_curve=self.loss_curve,
            validation_scores=self.scores,
            report={
                **self.report(),
                "stopped_by": self.stopped_by,
                "workers_per_epoch": self.workers_per_epoch,
            },
        )


def _run_in_process(
    kernel: Kernel,
    shards: list,
    store: ParameterStore,
    settings: TrainingSettings,
    started: float,
    between_epochs: Callable[[], None] | None = None,
) -> TrainingResult:
    """Epochs over in-memory shards, in the order of one sequential worker (see train);
    ``between_epochs`` is called after each epoch but the last."""
    n_samples = sum(shard.n_samples for shard in shards)
    trainer = make_trainer(
        kernel, store, settings.batch_size, settings.exchange_every, n_samples=n_samples
    )
    rng = np.random.RandomState(settings.random_state) if settings.shuffle else None
    totals = WorkerReport()
    progress = _Progress(
        kernel, store, settings, lambda: _report(totals, 0, [], settings, None), started
    )
    stop = False
    while not stop:
        started = time.perf_counter()
        epoch = WorkerReport()
        order = rng.permutation(len(shards)) if rng is not None else range(len(shards))
        for shard_id in order:
            trainer.train(shards[shard_id], epoch)
        trainer.close()  # the epoch's work all in the store before the model is read
        epoch.wall_seconds = time.perf_counter() - started
        totals.absorb(epoch)
        stop = progress.end_epoch(epoch.loss_sum, epoch.samples)
        if not stop and between_epochs is not None:
            between_epochs()
    return progress.result()


class _FanOut:
    """Keeps ``n_workers`` invocations in flight over the epochs' shards.

    ``dispatch`` plans epochs (a shuffled split of the shards) and submits invocations up
    to ``n_workers``; ``collect`` waits for one to end and books it: its work into its
    epoch, a failure relaunched (then, past the failure budget, kept in ``error``), the
    rows left by an invocation out of time relaunched. A failure the store's loss of the
    model explains (``saver.lost()``) sets ``store_lost`` instead: nothing more is
    launched until the driver has put the model back and called ``restart_at``.
    ``finished(n)`` gives epoch ``n`` once all its shards are done: epochs finish in order.
    """

    def __init__(
        self,
        data: DataHandle,
        store: ParameterStore,
        executor,
        settings,
        kernel,
        reshuffle: bool,
        saver: EpochSaver,
    ):
        self.data = data
        self.saver = saver
        self.store_lost = False
        self.store_losses = 0
        # a dataset's rows are in the order given: the workers shuffle each shard's rows,
        # anew every epoch
        self.reshuffle = reshuffle and settings.shuffle
        self.executor = executor
        self.settings = settings
        self.n_workers = settings.n_workers
        self.rng = np.random.RandomState(settings.random_state) if settings.shuffle else None
        self.resources = WorkerResources(
            memory_mb=settings.worker_memory_mb, timeout_s=settings.worker_timeout
        )
        budget = None
        if settings.worker_timeout is not None:
            budget = settings.worker_timeout * TIME_BUDGET_FRACTION
        memory_budget = None
        if settings.worker_memory_mb is not None and not (
            executor.enforces_memory or executor.in_process
        ):
            memory_budget = settings.worker_memory_mb - executor.runtime_memory_mb
        self.base_task = WorkerTask(
            store=store.handle(),
            data=data,
            kernel=kernel,
            shard_ids=(),
            time_budget_s=budget,
            prefetch=settings.prefetch,
            exchange_every=settings.exchange_every,
            significance=settings.significance,
            n_workers=settings.n_workers,
            memory_budget_mb=memory_budget,
            model=uuid.uuid4().hex,
        )
        self.epoch_seeds: dict[int, int] = {}
        self.pending: deque[_Invocation] = deque()
        self.epochs: dict[int, _Epoch] = {}
        self.in_flight: dict = {}
        self.next_epoch = 0
        self.totals = WorkerReport()
        self.invocations = 0
        self.relaunches = 0  # after a failure, or on the rest of a shard out of time
        self.failures: list[str] = []  # why each failed invocation failed
        self.error: BaseException | None = None

    def scale_to(self, n_workers: int) -> None:
        """Keep ``n_workers`` invocations in flight from now on (epochs planned before
        keep their cut: their invocations wait for a free place)."""
        if n_workers != self.n_workers:
            self.n_workers = n_workers
            # a worker's runs between exchanges follow the workers there are
            self.base_task = replace(self.base_task, n_workers=n_workers)

    def dispatch(self) -> None:
        while len(self.in_flight) < self.n_workers:
            if not self.pending and self.next_epoch < self.settings.max_iter:
                self.pending.extend(
                    _plan_epoch(self.next_epoch, self.data.n_shards, self.n_workers, self.rng)
                )
                self.epochs[self.next_epoch] = _Epoch(shards_left=self.data.n_shards)
                if self.reshuffle:
                    self.epoch_seeds[self.next_epoch] = int(self.rng.randint(2**31))
                self.next_epoch += 1
            if not self.pending:
                return
            invocation = self.pending.popleft()
            task = replace(
                self.base_task,
                shard_ids=invocation.shard_ids,
                first_row=invocation.first_row,
                last_epoch=invocation.epoch == self.settings.max_iter - 1,
            )
            if self.reshuffle:
                seed = self.epoch_seeds[invocation.epoch]
                task = replace(task, data=replace(self.data, shuffle_seed=seed))
            self.in_flight[self.executor.submit(run_worker, task, self.resources)] = invocation
            self.invocations += 1

    def collect(self) -> None:
        done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
        # in submission order, so that a sequential fit adds up its losses identically
        for future in [f for f in self.in_flight if f in done]:
            invocation = self.in_flight.pop(future)
            try:
                report: WorkerReport = future.result()
            except Exception as exc:
                if self.store_lost:
                    continue  # in flight when the store lost the model: one loss, counted once
                if self.saver.lost():
                    self.lose_store()
                else:
                    self.failures.append(_reason(exc))
                # damaged data is damaged on every try: no retry
                if isinstance(exc, DamagedData) or len(self.failures) > failure_budget(
                    self.invocations, self.settings.max_retries
                ):
                    self.error = exc
                elif not self.store_lost:
                    self.pending.appendleft(invocation)
                    self.relaunches += 1
                continue
            self.totals.absorb(report)
            epoch = self.epochs[invocation.epoch]
            epoch.loss_sum += report.loss_sum
            epoch.samples += report.samples
            epoch.shards_left -= report.shards_done
            rest = invocation.shard_ids[report.shards_done :]
            if rest and report.stopped_by == "budget":
                self.pending.appendleft(
                    _Invocation(invocation.epoch, rest, first_row=report.rows_into_shard)
                )
                self.relaunches += 1

    def lose_store(self) -> None:
        """The store lost the model: a failure of the fit's, and a stop until restart_at."""
        self.store_lost = True
        self.store_losses += 1
        self.failures.append("StoreLost: the parameter store no longer held the model")

    def restart_at(self, epoch: int) -> None:
        """Plan anew from ``epoch``, the model being back as it was before it."""
        # the model was written anew: replicas the workers kept of it are not it
        self.base_task = replace(self.base_task, model=uuid.uuid4().hex)
        self.pending.clear()
        self.epochs.clear()
        self.next_epoch = epoch
        self.store_lost = False

    def finished(self, n: int) -> _Epoch | None:
        if n in self.epochs and self.epochs[n].shards_left == 0:
            return self.epochs.pop(n)
        return None

    def report(self) -> dict:
        return _report(
            self.totals,
            self.invocations,
            self.failures,
            self.settings,
            self.executor,
            relaunches=self.relaunches,
            in_flight=len(self.in_flight),  # when the report is made: at a checkpoint, live
            store_losses=self.store_losses,
        )


def _run(
    kernel: Kernel,
    data: DataHandle,
    store: ParameterStore,
    executor: Executor,
    settings: TrainingSettings,
    create_keys: Callable[[ParameterStore], None],
    started: float,
    *,
    reshuffle: bool = False,
) -> TrainingResult:
    """The epochs fanned out to the executor's workers until the fit stops (see
    :class:`_EpochLoop`); the fit's result, or its failure raised."""
    progress = _Progress(kernel, store, settings, lambda: fan_out.report(), started, create_keys)
    progress.saver.write_start()
    fan_out = _FanOut(data, store, executor, settings, kernel, reshuffle, progress.saver)
    loop = _EpochLoop(fan_out, progress, store, remote_workers=not executor.in_process)
    loop.run()
    return loop.outcome(settings)


class _EpochLoop:
    """The driver's protocol, one step a method: dispatch invocations up to the workers
    wanted, collect the next that ends (relaunching what failed or ran out of time),
    restart the worker that ended, close every epoch whose shards are all done (book
    it, save it, decide to stop or scale in), and, when the store lost the model, put
    the saved epoch back once nothing can write to the old one. ``outcome`` gives the
    result, or raises why the fit failed."""

    def __init__(self, fan_out: _FanOut, progress: _Progress, store, *, remote_workers: bool):
        self.fan_out, self.progress, self.store = fan_out, progress, store
        self.remote_workers = remote_workers
        self.stopping = False
        self.overflow: ValueError | None = None

    def run(self) -> None:
        while True:
            self.dispatch()
            if not self.fan_out.in_flight:
                if self.put_back_lost_model():
                    continue
                return
            self.fan_out.collect()  # (relaunches failed and unfinished invocations)
            self.stopping = self.stopping or self.fan_out.error is not None
            if self.remote_workers:
                # the worker that just ended starts again before the epoch is booked:
                # booking may save the model from a remote store (20-35 ms on
                # ml-latest-small) or score it, which would idle the worker. (Workers in
                # this process stay in step with the booking: a sequential one trains
                # inside submit.)
                self.dispatch()
            self.close_finished_epochs()
            if self.stopping:
                self.store.set_flag(STOP_FLAG)

    def dispatch(self) -> None:
        if not self.stopping and not self.fan_out.store_lost:
            self.fan_out.dispatch()

    def put_back_lost_model(self) -> bool:
        """With no invocation in flight, after the store lost the model: the saved epoch
        put back and planned from; False when there is nothing to put back (the fit
        ends)."""
        if not self.fan_out.store_lost or self.fan_out.error is not None:
            return False
        # every invocation that could still write to the old model has ended
        self.fan_out.restart_at(self.progress.roll_back())
        return True

    def close_finished_epochs(self) -> None:
        fan_out, progress = self.fan_out, self.progress
        while (
            not self.stopping
            and not fan_out.store_lost
            and (epoch := fan_out.finished(progress.n_iter)) is not None
        ):
            try:
                self.stopping = progress.end_epoch(epoch.loss_sum, epoch.samples)
                fan_out.scale_to(progress.n_workers)
            except FloatingPointError as exc:
                self.overflow, self.stopping = ValueError(str(exc)), True
            except StoreLost:
                fan_out.lose_store()

    def outcome(self, settings: TrainingSettings) -> TrainingResult:
        fan_out = self.fan_out
        if isinstance(fan_out.error, DamagedData):
            raise fan_out.error
        if fan_out.error is not None:
            _raise_failure(fan_out.error, fan_out.failures, fan_out.invocations, settings)
        if self.overflow is not None:
            raise self.overflow
        try:
            return self.progress.result()
        except StoreLost:  # lost after the last epoch: its saved tables are the model
            self.progress.roll_back()
            return self.progress.result()


def _raise_failure(
    error: BaseException, failures: list[str], launched: int, settings: TrainingSettings
):
    """Raise the fit's failure, typed as the last invocation's, saying how many failed,
    their last causes and what to change; the worker's traceback chained."""
    causes = "\n".join(f"  - {reason}" for reason in failures[-3:])
    message = (
        f"{len(failures)} of {launched} worker invocations failed, more than a fit tolerates "
        f"(the larger of max_retries={settings.max_retries} and half the invocations "
        f"launched). Last causes:\n{causes}\n{_advice(error, settings)}\nLast failure: "
        f"{type(error).__name__}: {error}"
    )
    raise (type(error) if isinstance(error, WorkerError) else WorkerError)(message) from error


def _advice(error: BaseException, settings: TrainingSettings) -> str:
    if isinstance(error, WorkerOutOfMemory):
        return (
            f"Raise worker_memory_mb (now {settings.worker_memory_mb}) or lower batch_size "
            f"(now {settings.batch_size})."
        )
    if isinstance(error, WorkerTimeout):
        return f"Raise worker_timeout (now {settings.worker_timeout} s)."
    if isinstance(error, WorkerLost):
        return (
            "Worker processes were killed from outside (a signal, the machine's out-of-memory "
            "killer): check the machine's free memory and what ends processes."
        )
    if isinstance(error, (ConnectionError, PermissionError)):
        return "The workers cannot use the parameter store: check store= and its server."
    return (
        "The same error on every try is in the data, the parameters or the code, not the "
        "platform: see the worker's traceback below."
    )


def _reason(error: BaseException) -> str:
    """One line that says why an invocation failed: the error's first line and, when it
    carries a remote traceback (Ray, Dask, a worker process), its last: the worker's own
    error."""
    lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    said = " ... ".join([lines[0][:150], lines[-1][:150]] if len(lines) > 1 else lines)
    return f"{type(error).__name__}: {said}"


# terminal colour codes some backends put in their error messages
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# failed invocations whose reasons fit_report_ keeps (the most recent ones)
MAX_FAILURE_REASONS = 20


def _report(
    totals: WorkerReport,
    invocations: int,
    failures: list[str],
    settings: TrainingSettings,
    executor,
    *,
    relaunches: int = 0,
    in_flight: int = 0,
    store_losses: int = 0,
) -> dict:
    """fit_report_: what the work cost; ``executor`` None for a fit that stayed home."""
    memory_gb = 0.0 if executor is None else (settings.worker_memory_mb or 0) / 1024
    gb_seconds = totals.wall_seconds * memory_gb
    return {
        "path": "in-process" if executor is None else "workers",
        "invocations": invocations,
        "failures": len(failures),
        "failure_reasons": failures[-MAX_FAILURE_REASONS:],
        "relaunches": relaunches,
        "in_flight": in_flight,
        "store_losses": store_losses,
        "samples": totals.samples,
        "updates": totals.steps,
        "worker_seconds": totals.wall_seconds,
        "worker_cpu_seconds": totals.cpu_seconds,
        "gb_seconds": gb_seconds,
        "estimated_cost_usd": gb_seconds * USD_PER_GB_SECOND + invocations * USD_PER_INVOCATION,
        "peak_worker_memory_mb": totals.peak_memory_mb,
        **{f"seconds_{phase}": seconds for phase, seconds in totals.seconds.items()},
    }
