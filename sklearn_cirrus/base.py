"""What every serverless estimator shares: the engine's parameters and the fit hand-off.

An estimator translates its own parameters into a kernel (the model and its maths) and
an optimizer rule; :class:`ServerlessEstimatorMixin` adds the parameters that say where
and how the work runs, their constraints and documentation, and hands a fit to
:func:`~sklearn_cirrus.runtime.driver.train` as explicit
:class:`~sklearn_cirrus.runtime.driver.TrainingSettings`: the engine never reads an
estimator.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.callback import CallbackSupportMixin

from . import planning
from ._compat import Interval, StrOptions
from .credentials import HiddenCredentialsMixin
from .dataset import ShardedDataset
from .epoch_callbacks import fit_task
from .executors import Executor, WorkerResources, make_executor
from .namespaces import namespace_name, shared_memory_root
from .runtime.driver import TrainingResult, TrainingSettings, runs_in_process, train
from .runtime.mapping import map_shards
from .store import may_lose_state

# the documentation site (docs/, built by Sphinx); an estimator's HTML repr links its page
DOCS_URL = "https://sklearn-cirrus.readthedocs.io/en/latest/"

# seeds handed to the engine are drawn from the estimator's random_state in this range
MAX_SEED = np.iinfo(np.int32).max

ENGINE_PARAMETER_CONSTRAINTS: dict = {
    "n_workers": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "executor": [str, Executor, None],
    "store": [str, None],
    "data_url": [str, None],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "exchange_every": [Interval(Integral, 1, None, closed="left"), None],
    "significance": [Interval(Real, 0, None, closed="neither"), None],
    "worker_memory_mb": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
    "worker_timeout": [Interval(Real, 0, None, closed="neither"), None],
    "resources": [StrOptions(set(planning.OBJECTIVES)), dict],
    "scale_in": ["boolean"],
}

ENGINE_PARAMETERS_DOC = """
    n_workers : int or 'auto', default=2
        Worker invocations kept in flight at once, in [1, inf). 'auto': the count
        :meth:`plan` predicts best for ``resources`` (on data small enough to train
        in this process, no plan is made: one worker).
    executor : {'threads', 'processes', 'sequential'}, Executor or None, default=None
        Where workers run: threads of this process (None), one local process per
        invocation with enforced limits, or one at a time in this thread (exactly
        reproducible with ``n_workers=1``). An :class:`~sklearn_cirrus.executors.Executor`
        instance (Dask, Ray, Lithops...) is used as is and not shut down.
    store : {'memory', 'shm'}, "redis://host:port/db" or None, default=None
        Parameter store: this process's memory, shared memory reachable by local
        processes, or Redis for workers anywhere. None picks the one the executor
        can reach. A password in the URL is set aside as the parameter is set: the
        estimator (its parameters, clones and pickles) keeps the URL without it
        (see :ref:`the Redis store <redis-store>`).
    data_url : str or None, default=None
        Folder URL where ``fit`` stages the data as shards (any fsspec URL the workers
        can read, e.g. ``"s3://bucket/prefix"`` for cloud functions); removed after the
        fit. None: memory for in-process workers, else shared memory on this machine.
    exchange_every : int or None, default=None
        Against a remote store (Redis, the Ray actor), minibatches a worker trains
        between two exchanges with the store. A worker trains on a replica of the whole
        model; each exchange sends what it changed (in single precision, half for
        wide rows such as matrix factorization's), and brings back what the others
        changed: more means fewer, bigger exchanges, but rows as
        stale as that many steps of the other workers. Each worker's changes of a
        popular row start from the same stale row and add up: a linear model's run
        damps its change of a row by the share of its samples that touched it, down to
        1 / (2 n_workers) for the intercept's. Measured on hashed click logs with two
        workers (docs/benchmarks.md): 64 keeps the test loss of shared memory at
        0.46-0.48x its speed on Redis and 0.41-0.52x on the Ray actor, 128 loses up to
        0.0007; more workers need shorter runs. None: for linear models 64, at most
        512 / n_workers**3 (4 workers: 8; 8 workers: 1) and an eighth of the
        minibatches a worker trains an epoch (on a9a with four workers, one exchange an
        epoch cost accuracy); for matrix factorization, whose factors suffer more from
        stale rows, 32 with up to two workers and 1 with more. By default the first
        runs are shorter while the model is young: at most a quarter of the samples it
        has seen, 4 minibatches at least. Workers that share the store's memory
        ('memory', 'shm') update it in place at every minibatch, whatever this says.
    significance : float or None, default=None
        Against a remote store, the significance filter of MLLess: an exchange sends a
        row's change only when it is larger than ``significance`` times the row's
        value in some column (a row at zero: any change); a smaller one stays in the
        worker's replica and is sent with the row's next changes once they add up to
        a significant one, and at the end of the worker's invocation whatever its
        size. Fewer bytes an exchange, for changes the other workers see later; a
        worker then holds two copies of the model. None sends every change.
    worker_memory_mb : int, 'auto' or None, default=1024
        Memory of one worker, in MB, enforced by the 'processes' executor. Too small
        a value for one batch is rejected before any worker starts. 'auto': the size
        :meth:`plan` picks for ``resources`` among those that hold what a worker
        needs (this machine: 256 MB to 4 GB; a platform: its own sizes).
    worker_timeout : float or None, default=300
        Seconds one invocation may run; workers return by themselves before it and
        the driver relaunches them on the rest of their shards.
    resources : {'fastest', 'cheapest'} or dict, default='fastest'
        What ``n_workers='auto'`` and ``worker_memory_mb='auto'`` choose for: the
        configuration :meth:`plan` predicts fastest (the cheapest of those within 3%
        of it) or cheapest (the fastest of those the price table prices alike: below
        one vCPU, a larger worker costs the same for less time); ``{'deadline':
        seconds}``: the cheapest predicted within it; ``{'budget': dollars}``: the
        fastest predicted within it (both keys: the fastest within both). A deadline
        or budget also stops the fit, whatever chose its resources, before an epoch
        that would pass it (the model is the last epoch's,
        ``fit_report_['stopped_by']`` says why, and a
        :class:`~sklearn_cirrus.exceptions.ResourceLimitWarning` is raised); the
        probe's own time and cost count. Dollars are ``fit_report_``'s estimate.
    scale_in : bool, default=False
        Halve the workers in flight (never below one) once an epoch lowers the mean
        training loss by less than 1% (MLLess's scale-in: the same loss for fewer
        worker-seconds once the curve flattens); ``fit_report_['workers_per_epoch']``
        gives the count of each epoch.
"""


@dataclass(frozen=True)
class _PlanRequest:
    """What :meth:`ServerlessEstimatorMixin.plan` asks of a fit: its candidates; when it
    began (the fit's preparation, up to the probe, is a cost of the fit planned)."""

    n_workers: tuple
    worker_memory_mb: tuple | None
    platform: object
    started: float


class _PlanMade(Exception):
    """How a fit asked for a plan (``plan()``) stops where training would start, with the
    plan's rows: its validation, encoding and kernel are the fit's own."""

    def __init__(self, rows: list[dict]):
        super().__init__("a plan, not a fit")
        self.rows = rows


class DocumentationLinkMixin:
    """Links an estimator's HTML repr (in notebooks) to its page of the API reference."""

    _doc_link_module = "sklearn_cirrus"
    _doc_link_template = DOCS_URL + "generated/sklearn_cirrus.{estimator_name}.html"

    def _doc_link_url_param_generator(self) -> dict:
        # every estimator is documented under its top-level name (docs/api.rst)
        return {"estimator_name": type(self).__name__}


def is_dask_collection(X) -> bool:
    """Whether ``X`` is a dask array, dataframe or series (without importing dask)."""
    return type(X).__module__.partition(".")[0] in ("dask", "dask_expr") and hasattr(
        X, "to_delayed"
    )


@contextmanager
def dataset_of_dask(X, y, sample_weight, data_url: str | None):
    """A dask collection (and y) written block by block by the Dask workers as a dataset
    under ``data_url`` (else this machine's shared memory), removed afterwards."""
    if sample_weight is not None:
        raise ValueError(
            "sample_weight cannot go with a dask collection; write X, y and the weights "
            "as a ShardedDataset (ShardedDataset.from_arrays or from_dask) instead"
        )
    folder = data_url.rstrip("/") if data_url is not None else str(shared_memory_root())
    dataset = ShardedDataset.from_dask(X, y, f"{folder}/{namespace_name()}")
    try:
        yield dataset
    finally:
        dataset.remove()


class DatasetScoreMixin:
    """``score`` over a :class:`~sklearn_cirrus.ShardedDataset`, against its own targets
    and weights; arrays go to scikit-learn's ``score`` as they are. Comes first among the
    bases, before scikit-learn's mixins."""

    def score(self, X, y=None, sample_weight=None):
        """The score of scikit-learn's mixin (accuracy, R^2...); see its documentation.

        Over a dataset, y and sample_weight are the dataset's own, and the predictions
        are computed by workers shard by shard.
        """
        if isinstance(X, ShardedDataset):
            self._check_dataset(X, y, sample_weight, reset=False)
            y, sample_weight = X.targets(), X.sample_weights()
        return super().score(X, y, sample_weight=sample_weight)


class ServerlessEstimatorMixin(
    HiddenCredentialsMixin, DocumentationLinkMixin, CallbackSupportMixin
):
    """The engine's parameters and the hand-off of a fit to it.

    A subclass has the parameters of ``ENGINE_PARAMETER_CONSTRAINTS`` and the training
    loop's ``max_iter``, ``tol``, ``n_iter_no_change``, ``shuffle`` and ``verbose``, and
    calls :meth:`_fit_engine` from ``fit``.
    """

    def plan(self, X, y=None, *, n_workers=(1, 2, 4, 8), worker_memory_mb=None, platform=None):
        """Predict, without training, what a fit would take on each configuration.

        ``fit``'s own preparation runs (validation, encoding, the model: timed, a cost of
        the fit too), then one probe of this estimator's training, on one worker of its
        executor over at most ``planning.PROBE_ROWS`` rows, measures its seconds per
        sample, what a fit costs besides training, and the worker's peak memory; each
        configuration's figures follow from them (the ``measured`` and ``assumed``
        columns say which is which; the assumptions are listed in
        :mod:`sklearn_cirrus.planning`). The estimator is left as it was.

        Parameters
        ----------
        X, y : arrays or ShardedDataset
            The data the fit would get (a dataset: y None).
        n_workers : sequence of int, default=(1, 2, 4, 8)
            The worker counts to consider.
        worker_memory_mb : int or sequence of int, default=None
            The memory sizes to consider; None: the platform's, else this estimator's.
        platform : Platform or None, default=None
            A serverless platform's price table and CPU rule
            (:data:`sklearn_cirrus.platforms.AWS_LAMBDA`, or one of yours); None: the
            executor's own (``Executor.platform``), else this machine's cores, priced
            as ``fit_report_`` prices them.

        Returns
        -------
        table : pandas.DataFrame or dict of arrays
            A row per configuration: ``executor``, ``platform``, ``n_workers``,
            ``worker_memory_mb``, ``batch_size``, ``epochs``, ``predicted_seconds``,
            ``predicted_worker_seconds``, ``predicted_gb_seconds``,
            ``predicted_cost_usd``, ``invocations``, ``memory_needed_mb`` and
            ``fits_in_memory`` (the worker's need within the memory), ``measured``,
            ``assumed``. A dict of arrays when pandas is not installed.
        """
        planner = clone(self)
        sizes = None if worker_memory_mb is None else tuple(np.atleast_1d(worker_memory_mb))
        planner._plan_request = _PlanRequest(
            tuple(n_workers), sizes, platform, started=time.perf_counter()
        )
        try:
            planner.fit(X, y)
        except _PlanMade as made:
            return planning.frame(made.rows)
        raise RuntimeError(f"{type(self).__name__}.fit did not reach its plan")

    def _n_workers(self) -> int:
        """Workers kept in flight: ``n_jobs`` when the estimator has one and it is set."""
        n_jobs = getattr(self, "n_jobs", None)
        return self._chosen("n_workers") if n_jobs is None else effective_n_jobs(n_jobs)

    def _chosen(self, name: str):
        """A resource parameter's value; for 'auto', what the last fit chose (before any
        fit: the parameter's default)."""
        value = getattr(self, name)
        if value != "auto":
            return value
        chosen = getattr(self, "fit_report_", {}).get("resources", {})
        return chosen.get(name, {"n_workers": 2, "worker_memory_mb": 1024}[name])

    def _choose_resources(
        self, kernel, data, y, sample_weight, settings, init, owned: ExitStack, refit: bool
    ):
        """The settings of a fit whose resources are 'auto' (or that ``plan`` asks about),
        and what ``fit_report_['resources']`` says of the choice (None: nothing chosen).

        A fit with data small enough to stay home has nothing to plan: one worker, the
        least memory that holds its runtime, shards and model, no probe. ``partial_fit``
        keeps the choice of the call before (``refit`` False); the first call makes it."""
        planning.check_resources(self.resources)
        request = getattr(self, "_plan_request", None)
        auto = {n for n in ("n_workers", "worker_memory_mb") if getattr(self, n) == "auto"}
        if request is None and not auto:
            return settings, None
        earlier = getattr(self, "fit_report_", {}).get("resources")
        if request is None and not refit and earlier is not None:
            kept = {**earlier, "probe_seconds": 0.0, "probe_cost_usd": 0.0}
            return replace(settings, **{n: earlier[n] for n in auto}), kept
        in_process = runs_in_process(data, settings)
        if request is None and in_process:
            runtime_mb = getattr(settings.executor, "runtime_memory_mb", Executor.runtime_memory_mb)
            needed = planning.memory_needed_mb(None, kernel, data, settings, runtime_mb)
            chosen = {"n_workers": 1, "worker_memory_mb": planning.local_memory_for(needed)}
            return replace(settings, **{n: chosen[n] for n in auto}), {
                "objective": self.resources,
                **chosen,
                "path": "in-process",
                "probe_seconds": 0.0,
            }
        settings, measured, rows = self._plan(
            kernel, data, y, sample_weight, settings, init, owned, auto, request, in_process
        )
        if request is not None:
            raise _PlanMade(rows)
        row = planning.choose(rows, self.resources, measured.seconds, measured.cost_usd)
        limits = {  # what the probe spent of them
            "deadline_seconds": settings.deadline_seconds
            and settings.deadline_seconds - measured.seconds,
            "budget_usd": settings.budget_usd and settings.budget_usd - measured.cost_usd,
        }
        return replace(settings, **{n: row[n] for n in auto}, **limits), {
            "objective": self.resources,
            "n_workers": row["n_workers"],
            "worker_memory_mb": row["worker_memory_mb"],
            "path": "workers",
            **{k: v for k, v in row.items() if k.startswith("predicted_")},
            "probe_seconds": measured.seconds,
            "probe_cost_usd": measured.cost_usd,
        }

    def _plan(
        self, kernel, data, y, sample_weight, settings, init, owned, auto, request, in_process
    ):
        """Probe the fit, then predict every candidate: (the settings, on the executor the
        probe made, which the fit shares and ``owned`` shuts down; the probe; the rows).

        The candidates: ``plan()``'s request, else for 'auto' ``planning.WORKER_COUNTS``
        and the platform's memory sizes (this machine's: ``LOCAL_MEMORY_SIZES_MB``)."""
        # (before the executor: a pool it starts, once a session, is not the fit's)
        preparing = 0.0 if request is None else time.perf_counter() - request.started
        if not in_process:
            executor, owns = make_executor(settings.executor)
            if owns:
                owned.callback(executor.shutdown)
            settings = replace(settings, executor=executor)
        runtime_mb = getattr(settings.executor, "runtime_memory_mb", Executor.runtime_memory_mb)

        def memory_needed(measured=None) -> int:
            return planning.memory_needed_mb(measured, kernel, data, settings, runtime_mb)

        # the probe's workers have the memory the fit's will (warm processes are kept by
        # their limits): for 'auto', the least that holds the runtime, shards and model
        probing = settings
        if "worker_memory_mb" in auto:
            probing = replace(settings, worker_memory_mb=planning.local_memory_for(memory_needed()))
        measured = planning.probe(kernel, data, y, sample_weight, probing, init, in_process)
        measured = replace(measured, preparation_seconds=preparing)
        platform = (request and request.platform) or getattr(settings.executor, "platform", None)
        platform_sizes = platform.memory_sizes_mb if platform else None
        if request is not None:
            counts = request.n_workers
            sizes = (
                request.worker_memory_mb or platform_sizes or (self._chosen("worker_memory_mb"),)
            )
        else:
            counts = planning.WORKER_COUNTS if "n_workers" in auto else (settings.n_workers,)
            sizes = (settings.worker_memory_mb or 1024,)  # (no limit: priced as the default)
            if "worker_memory_mb" in auto:
                sizes = platform_sizes or planning.LOCAL_MEMORY_SIZES_MB
        rows = planning.plan_rows(
            measured,
            settings,
            n_samples=planning.n_rows(data),
            n_workers=counts,
            memory_sizes=sizes,
            platform=platform,
            memory_needed=memory_needed(measured),
            in_process=in_process,
        )
        return settings, measured, rows

    def _fit_engine(
        self,
        kernel,
        X,
        y,
        sample_weight,
        *,
        optimizer,
        init,
        attributes,
        seed: int,
        max_iter: int | None = None,
        validation_score=None,
        optimizer_state=None,
        samples_seen: float = 0.0,
        is_fit_task: bool = True,
        classes=None,
    ) -> TrainingResult:
        """Train ``kernel`` and set the fitted attributes ``attributes(result)`` gives.

        ``X`` is arrays or a :class:`~sklearn_cirrus.ShardedDataset` (then ``y`` and
        ``sample_weight`` are None, and ``classes`` says how workers encode its labels).

        ``attributes`` also turns each epoch's checkpoint into attributes for fit
        callbacks, when the call is a fit task (``partial_fit`` is one epoch of a
        longer fit, not a task of its own).
        """
        max_iter = self.max_iter if max_iter is None else max_iter
        tracked = (
            fit_task(
                self,
                # epochs trained again after a store lost the model are tasks too
                max_epochs=None if may_lose_state(self.store) else max_iter,
                attributes=attributes,
                X=X,
                y=y,
                sample_weight=sample_weight,
            )
            if is_fit_task
            else nullcontext()
        )
        with tracked as on_epoch, ExitStack() as owned:
            settings = TrainingSettings(
                optimizer=optimizer,
                n_workers=self._n_workers() if self.n_workers != "auto" else 1,
                executor=self.executor,
                store=self.store,
                data_url=self.data_url,
                batch_size=self.batch_size,
                exchange_every=self.exchange_every,
                significance=self.significance,
                worker_memory_mb=None if self.worker_memory_mb == "auto" else self.worker_memory_mb,
                worker_timeout=self.worker_timeout,
                max_iter=max_iter,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                shuffle=self.shuffle,
                verbose=self.verbose,
                random_state=seed,
                validation_score=validation_score,
                on_epoch=on_epoch,
                scale_in=self.scale_in,
                **planning.limits_of(self.resources),
            )
            data = (
                X.handle(batch_size=self.batch_size, classes=classes)
                if isinstance(X, ShardedDataset)
                else X
            )
            started = time.perf_counter()
            settings, chosen = self._choose_resources(
                kernel, data, y, sample_weight, settings, init, owned, refit=is_fit_task
            )
            result = train(
                kernel,
                data,
                y,
                sample_weight,
                settings,
                init=init,
                optimizer_state=optimizer_state,
                samples_seen=samples_seen,
            )
            if chosen is not None:  # what was chosen, what it was predicted to take, what it took
                result.report["resources"] = {
                    **chosen,
                    "seconds": time.perf_counter() - started,
                    "cost_usd": result.report["estimated_cost_usd"]
                    + chosen.get("probe_cost_usd", 0.0),
                }
            for name, value in attributes(result).items():
                setattr(self, name, value)
        return result

    def _check_dataset(
        self, dataset: ShardedDataset, y=None, sample_weight=None, *, reset: bool
    ) -> None:
        """What ``validate_data`` checks of arrays, for a dataset: its width (recorded in
        ``n_features_in_`` on ``reset``), and that y and weights are not given twice."""
        if y is not None or sample_weight is not None:
            raise ValueError(
                "a ShardedDataset brings its own targets and sample weights; pass y=None "
                "and sample_weight=None with it"
            )
        if reset:
            self.n_features_in_ = dataset.n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif dataset.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {dataset.n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )

    def _map_dataset(self, dataset: ShardedDataset, fn, *, classes=None) -> np.ndarray:
        """``fn`` of every shard of ``dataset``, computed by workers on this estimator's
        executor, as one array in the dataset's row order."""
        return dataset.restore_order(self._shard_results(dataset, fn, classes=classes))

    def _shard_results(self, dataset: ShardedDataset, fn, *, classes=None) -> list:
        """``fn`` of every shard of ``dataset``, computed by workers on this estimator's
        executor, in shard order."""
        return map_shards(
            dataset.handle(batch_size=self.batch_size, classes=classes),
            fn,
            executor=self.executor,
            n_workers=self._n_workers(),
            resources=WorkerResources(
                memory_mb=self.worker_memory_mb, timeout_s=self.worker_timeout
            ),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # several asynchronous workers make training order, and so the model, vary
        tags.non_deterministic = self._n_workers() > 1
        return tags
