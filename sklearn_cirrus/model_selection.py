"""Hyperparameter search where every candidate and fold trains at once on one worker pool.

:class:`ServerlessGridSearchCV` and :class:`ServerlessRandomizedSearchCV` are
scikit-learn's ``GridSearchCV`` and ``RandomizedSearchCV``: the same candidates,
splits, scoring, ``cv_results_``, ``best_params_`` and refit. What changes is where
the fits run and how they are watched: all candidate x fold fits start together, each
in a driver thread, and their workers share one executor that never has more than
``max_workers`` invocations in flight. A :class:`~sklearn_cirrus.search_board.SearchBoard`
follows every fit epoch by epoch and stops the candidates that fall behind.
"""

from __future__ import annotations

import os
import sys
import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from joblib import parallel_config
from sklearn.base import clone, is_classifier
from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
    check_cv,
)
from sklearn.utils import indexable
from sklearn.utils.validation import check_is_fitted

from . import planning
from ._compat import Interval, StrOptions
from ._extras import require
from .base import DocumentationLinkMixin
from .credentials import HiddenCredentialsMixin
from .data import data_bytes
from .dataset import ShardedDataset
from .exceptions import ResourceLimitWarning
from .executors import Executor, ProcessExecutor, make_executor
from .executors.throttle import ThrottledExecutor
from .namespaces import namespace_name, shared_memory_root
from .runtime import driver
from .search_board import EARLY_STOPPING_RULES, SearchBoard, candidate_curve
from .shared_steps import StepCache, share_leading_steps, unshare

# driver threads at most: each mostly waits on its workers
_MAX_CONCURRENT_FITS = 64
# On a pool of this machine's cores (threads, processes), the fits of a search keep every
# core busy themselves: a fit of up to this much data trains in a thread of its own rather
# than on workers (bench_search.py, hashed text, 8 MB folds: 8.7 s in threads against
# 14.9 s on 2 process workers). At most _MAX_CONCURRENT_FITS x this of folds at once.
LOCAL_SEARCH_IN_PROCESS_MAX_BYTES = 16 * 2**20


def _parameters_named(estimator, parameter: str) -> list[str]:
    """Names of the ``parameter`` parameters of the estimator and anything nested in it."""
    return [name for name in estimator.get_params() if name.split("__")[-1] == parameter]


class _PlainProgress:
    """The progress of a search in plain lines on stderr, for an install without tqdm."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    def update(self, n: int = 1):
        self.done += n
        print(f"fits: {self.done}/{self.total} done", file=sys.stderr, flush=True)

    def close(self):
        pass


def _progress_bar(total: int):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(total)
    return tqdm(total=total, desc="fits", unit="fit")


def _largest_fold_bytes(X, splits) -> float:
    """About the bytes of the largest training part of ``splits`` (rows of ``X``)."""
    return data_bytes(X) * max(len(train) for train, _ in splits) / max(X.shape[0], 1)


def _numeric_arrays(X) -> bool:
    """Whether ``X`` is a sparse matrix or a 2-d numeric array (what fits train on as is)."""
    return sp.issparse(X) or (
        isinstance(X, np.ndarray) and X.ndim == 2 and np.issubdtype(X.dtype, np.number)
    )


class _DatasetTargets:
    """A scorer that, given a dataset's view and no y, scores against the view's targets
    (read by the driver; the predictions are the workers')."""

    def __init__(self, scorer):
        self.scorer = scorer

    def __call__(self, estimator, X, y=None, **kwargs):
        if y is None and isinstance(X, ShardedDataset):
            y = X.targets()
        return self.scorer(estimator, X, y, **kwargs)


def _unwrapped(scorers):
    if isinstance(scorers, dict):
        return {name: _unwrapped(scorer) for name, scorer in scorers.items()}
    return scorers.scorer if isinstance(scorers, _DatasetTargets) else scorers


class _ServerlessSearch(HiddenCredentialsMixin, DocumentationLinkMixin):
    """What both searches add to scikit-learn's: the shared pool and the board."""

    _serverless_constraints: dict = {
        "executor": [str, Executor, None],
        "store": [str, None],
        "max_workers": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": [StrOptions(set(EARLY_STOPPING_RULES)), None],
        "dashboard": ["boolean", str],
        "resources": [dict, None],
    }

    def fit(self, X, y=None, **params):
        """Run every candidate x fold fit at once on the shared pool, then refit the best.

        Parameters
        ----------
        X, y, **params
            As for :meth:`sklearn.model_selection.GridSearchCV.fit`.

        Returns
        -------
        self : object
            The fitted search.
        """
        inner, owned = make_executor(self._executor_spec())
        executors = _parameters_named(self.estimator, "executor")
        settings = self.estimator.get_params()
        # small fits stay in this process, each in a thread of its own, as an estimator's
        # do, unless the estimator names workers itself; larger ones too on a pool of
        # this machine's cores, which the other fits keep busy anyway
        local = inner.in_process or isinstance(inner, ProcessExecutor)
        shared = ThrottledExecutor(
            inner,
            self.max_workers or os.cpu_count() or 1,
            hosts_small_fits=all(settings[n] in driver.IN_PROCESS_EXECUTORS for n in executors),
            small_fit_bytes=LOCAL_SEARCH_IN_PROCESS_MAX_BYTES if local else None,
        )
        # the median rule compares fits at the same epoch as they come; halving waits
        # for them at its rungs, and a fit that keeps its slot keeps its model in cache
        shared.interleaves_fits = self.early_stopping == "median"
        overrides = dict.fromkeys(executors, shared)
        if self.store is not None:
            overrides.update(dict.fromkeys(_parameters_named(self.estimator, "store"), self.store))
        user_settings = {name: settings[name] for name in overrides}
        X, y = indexable(X, y)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, params.get("groups")))
        n_fits = self._n_candidates() * len(splits)
        concurrent_fits = min(n_fits, _MAX_CONCURRENT_FITS)
        if self.early_stopping is None and self._every_fit_hosted(X, splits, shared):
            # fits in this process that wait for nobody's epochs: a thread a slot, as
            # more would only take turns at the GIL (a9a, 12 candidates x 3 folds on 2
            # slots: 0.82 s against 0.98 s with a thread a fit)
            concurrent_fits = min(n_fits, shared.max_in_flight)
        if self.resources is not None:
            planning.check_resources(self.resources)
        board = self._board = SearchBoard(
            early_stopping=self.early_stopping,
            limits=self.resources,
            lend_slot=shared.lend_slot,
            concurrent_fits=concurrent_fits,
            scorer=self._refit_scorer(),
            X=X,
            y=y,
            splits=splits,
            progress=_progress_bar(n_fits) if self.verbose else None,
        )
        # scikit-learn's search runs on a copy whose estimator uses the shared pool:
        # this search's parameters never change, whoever reads them meanwhile
        cache = StepCache()
        shared_steps = {}
        if not set(params) - {"groups"}:  # (a step's fit parameters may differ by fit)
            shared_steps = share_leading_steps(self.estimator, self._searched_names(), cache)
        search = clone(self).set_params(
            estimator=clone(self.estimator).set_params(**overrides, **shared_steps)
        )
        search._board, search._pool = board, shared
        search._skl_callbacks = [*getattr(self, "_skl_callbacks", []), board]
        dataset = self._stage_once(X, y, params, splits, shared)
        if dataset is not None:
            # every candidate x fold fit reads row views of the same shards
            X, y = dataset, None
            search.cv = splits
            params = {k: v for k, v in params.items() if k not in ("sample_weight", "groups")}
        search._over_dataset = isinstance(X, ShardedDataset)
        dashboard = self._open_dashboard(board, shared) if self.dashboard else None
        try:
            # fits are drivers that mostly wait: one thread each, all at once (those
            # that train here: as many as they may train at once)
            with (
                parallel_config(backend="threading", n_jobs=concurrent_fits),
                warnings.catch_warnings(),
            ):
                # the board is ours, not the user's: steps it cannot reach need no warning
                warnings.filterwarnings("ignore", message=".* does not support callbacks")
                super(_ServerlessSearch, search).fit(X, y, **params)
        finally:
            cache.clear()
            del self._board
            if dashboard is not None:
                dashboard.close()
                del self._dashboard
            if dataset is not None:
                dataset.remove()
            if owned:
                inner.shutdown()
        for name, value in vars(search).items():
            if name.endswith("_") and not name.startswith("_"):
                setattr(self, name, value)
        if hasattr(self, "scorer_"):  # the user's scorers, not their dataset wrappers
            self.scorer_ = _unwrapped(self.scorer_)
        if hasattr(self, "best_estimator_"):
            # the refitted model keeps the user's settings, not the search's live pool,
            # and its own fitted steps
            unshare(self.best_estimator_).set_params(**user_settings)
        self.peak_workers_ = shared.peak_in_flight
        self._record_fits(board)
        limit = next((r for r in board.stopped().values() if r in planning.LIMITS), None)
        if limit is not None:
            warnings.warn(
                f"The search stopped its fits so as not to pass its {limit} "
                f"(resources={self.resources}): each candidate is scored as it stood "
                "(cv_results_['stopped_by']); the refit was not limited.",
                ResourceLimitWarning,
                stacklevel=2,
            )
        return self

    def _searched_names(self) -> set[str]:
        """The parameters the search varies (of its grid, or its distributions)."""
        space = getattr(self, "param_grid", None) or getattr(self, "param_distributions", {})
        return {name for part in (space if isinstance(space, list) else [space]) for name in part}

    def _executor_spec(self):
        """The search's pool: its own ``executor``, else the estimator's (else threads),
        so that a script runs where it ran before it was wrapped in a search; a script
        whose estimator says 'processes' needs the ``__main__`` guard either way."""
        if self.executor is not None:
            return self.executor
        settings = self.estimator.get_params()
        named = [settings[name] for name in _parameters_named(self.estimator, "executor")]
        return next((spec for spec in named if spec is not None), None)

    def _every_fit_hosted(self, X, splits, pool) -> bool:
        """Whether every fold's fit trains in this process (``driver.stays_in_process``,
        for arrays of numbers: what a fit trains on as it is given)."""
        if not _numeric_arrays(X):
            return False
        settings = self.estimator.get_params()
        stores = (
            [self.store]
            if self.store is not None
            else [settings[name] for name in _parameters_named(self.estimator, "store")]
        )
        data_urls = [settings[name] for name in _parameters_named(self.estimator, "data_url")]
        fold_bytes = _largest_fold_bytes(X, splits)
        return all(
            driver.stays_in_process(pool, store, data_url, fold_bytes)
            for store in stores or [None]
            for data_url in data_urls or [None]
        )

    def _stage_once(self, X, y, params, splits, pool) -> ShardedDataset | None:
        """The search's arrays written once as a dataset, when fits would each stage their
        own shards: folds larger than ``pool`` keeps in process, an estimator that reads
        datasets, scored by its ``score`` or by scikit-learn's named scorers (a function
        of the user's may want arrays), and no fit parameters but ``sample_weight`` and
        ``groups``. None otherwise."""
        if not (
            _numeric_arrays(X)
            and getattr(self.estimator, "_reads_datasets", False)
            and not callable(self.scoring)  # a function of the user's may want arrays
            and set(params) <= {"sample_weight", "groups"}
            and _largest_fold_bytes(X, splits) > driver.in_process_max_bytes(pool)
        ):
            return None
        data_url = getattr(self.estimator, "data_url", None)
        folder = data_url.rstrip("/") if data_url is not None else str(shared_memory_root())
        return ShardedDataset.from_arrays(
            X, y, f"{folder}/{namespace_name()}", sample_weight=params.get("sample_weight")
        )

    def _get_scorers(self):
        """scikit-learn's scorers; over a dataset, given the targets of the fold they score
        (scikit-learn passes a fold's y, and a dataset's view has its own)."""
        scorers, refit_metric = super()._get_scorers()
        if not getattr(self, "_over_dataset", False) or self.scoring is None:
            return scorers, refit_metric  # the estimator's score reads them itself
        if isinstance(scorers, _MultimetricScorer):
            wrapped = {name: _DatasetTargets(s) for name, s in scorers._scorers.items()}
            return _MultimetricScorer(scorers=wrapped, raise_exc=scorers._raise_exc), refit_metric
        return _DatasetTargets(scorers), refit_metric

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        """scikit-learn's search, telling the board the candidates as they are drawn."""

        def evaluate_and_tell(candidate_params, cv=None, more_results=None, callback_ctx=None):
            candidate_params = list(candidate_params)
            self._board.candidates = candidate_params
            return evaluate_candidates(
                candidate_params, cv, more_results, callback_ctx=callback_ctx
            )

        super()._run_search(evaluate_and_tell, callback_ctx=callback_ctx)
        pool = self._pool
        # every fold's fit stayed home: so does the refit, on (k-1)/k more rows than each,
        # where staging and starting workers would cost more than it
        pool.hosts_every_fit = pool.hosted > 0 and pool.submitted == 0

    def _refit_scorer(self):
        """The score that picks the best candidate: the one fits are compared by."""
        scorers, _ = self._get_scorers()
        refit = self.refit if isinstance(self.refit, str) else None

        def score(model, X, y) -> float:
            value = scorers(model, X, y)
            if isinstance(value, dict):  # several metrics: the one refit uses, or the first
                value = value[refit] if refit in value else next(iter(value.values()))
            return float(value)

        return score

    def _record_fits(self, board: SearchBoard) -> None:
        """``loss_curves_`` and the cv_results_ columns of where fits stopped and their cost."""
        _, self.loss_curves_, _ = board.curves()
        n_candidates = len(self.loss_curves_)
        stopped = board.stopped()
        records = [[board.record(i, k) for k in range(board.n_splits)] for i in range(n_candidates)]
        results = self.cv_results_
        for k in range(board.n_splits):
            results[f"split{k}_stop_epoch"] = np.array(
                [folds[k].n_iter if folds[k].n_iter is not None else -1 for folds in records]
            )
        results["early_stopped"] = np.array([i in stopped for i in range(n_candidates)])
        results["stopped_by"] = np.array([stopped.get(i, "") for i in range(n_candidates)])
        for name, key in (("worker_seconds", "worker_seconds"), ("cost_usd", "estimated_cost_usd")):
            results[name] = np.array(
                [sum((r.report or {}).get(key, np.nan) for r in folds) for folds in records]
            )

    def _open_dashboard(self, board, shared):
        """Serve this search's live page (``sklearn_cirrus.dashboard``); say where."""
        from .dashboard import Dashboard

        address, _, port = (self.dashboard if isinstance(self.dashboard, str) else "").partition(
            ":"
        )
        dashboard = Dashboard(
            self,
            board,
            lambda: shared.in_flight,
            address=address or "127.0.0.1",
            port=int(port) if port else None,
        )
        self._dashboard, self.dashboard_url_ = dashboard, dashboard.url
        # held-out scores cost the driver: computed for the page while one is open
        board.score_epochs = lambda: bool(dashboard.pages)
        print(f"search dashboard: {dashboard.url}", flush=True)
        return dashboard

    def stop_candidate(self, candidate: int) -> None:
        """Stop candidate ``candidate`` (its index in ``cv_results_``) while the search runs.

        Safe to call from another thread: each of its fits stops at its next epoch
        checkpoint and is scored as it stands.
        """
        board = getattr(self, "_board", None)
        if board is None:
            raise RuntimeError("stop_candidate() stops a candidate of a running search")
        n_candidates = len(board.candidates) or self._n_candidates()
        if not 0 <= candidate < n_candidates:
            raise ValueError(
                f"candidate must be the index of one of the {n_candidates} candidates, "
                f"got {candidate}"
            )
        board.stop_candidate(candidate)

    def plot_loss_curves(self, axes=None):
        """Draw every candidate's held-out score and training loss against time and
        against cost.

        One line per candidate, its folds combined epoch by epoch: the mean held-out
        score (the one the early-stopping rule judges; drawn when the search scores,
        i.e. with ``early_stopping``) and the mean training loss of the folds that
        reached the epoch; the time when the last of them finished it, counted from the
        end of the search's first epoch (not from the worker pool's start); and the
        estimated cost of all the candidate's folds so far, a fold that ended earlier
        counting with its final cost, so that cost never falls. Candidates the search
        stopped are dashed and end with a cross; the legend is outside the axes, on the
        right. Called from another thread while the search runs, it draws the curves so
        far. Needs matplotlib.

        Parameters
        ----------
        axes : array of matplotlib Axes of shape (n_rows, 2), default=None
            Where to draw: a row for the held-out score when there is one, then a row for
            the training loss; columns against seconds and against dollars. None: a new
            figure.

        Returns
        -------
        axes : array of matplotlib Axes of shape (n_rows, 2)
        """
        plt = require("matplotlib.pyplot", what="plot_loss_curves", extra="search")
        board = getattr(self, "_board", None)
        if board is not None:  # running: what the board has so far
            candidates, curves, stopped = board.curves()
        else:
            check_is_fitted(self, "loss_curves_")
            candidates, curves = self.cv_results_["params"], self.loss_curves_
            stopped = self.cv_results_["early_stopped"]
        combined = {i: curve for i, folds in enumerate(curves) if (curve := candidate_curve(folds))}
        scored = any(np.isfinite(curve["score"]).any() for curve in combined.values())
        rows = [("score", "held-out score")] if scored else []
        rows.append(("loss", "training loss"))
        if axes is None:
            height = 3.2 * len(rows)
            _, axes = plt.subplots(
                len(rows),
                2,
                figsize=(12, height),
                sharex="col",
                squeeze=False,
                layout="constrained",
            )
        axes = np.asarray(axes).reshape(len(rows), 2)
        start = min((curve["seconds"][0] for curve in combined.values()), default=0.0)
        for i, curve in combined.items():
            label = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in candidates[i].items())
            style = "--" if stopped[i] else "-"
            for row, (name, _) in zip(axes, rows, strict=True):
                values = curve[name]
                drawn = np.isfinite(values)  # (halving scores its rungs only)
                for ax, x in zip(row, (curve["seconds"] - start, curve["cost_usd"]), strict=True):
                    (line,) = ax.plot(x[drawn], values[drawn], style, label=label)
                    if stopped[i] and drawn.any():
                        ax.plot(x[drawn][-1], values[drawn][-1], "x", color=line.get_color())
        for row, (_, ylabel) in zip(axes, rows, strict=True):
            row[0].set_ylabel(ylabel)
        axes[-1, 0].set_xlabel("seconds since the search's first epoch ended")
        axes[-1, 1].set_xlabel("estimated cost so far ($, all folds)")
        if combined:
            axes[0, 1].legend(
                bbox_to_anchor=(1.02, 1), loc="upper left", borderaxespad=0, fontsize="small"
            )
        return axes


_SEARCH_PARAMETERS_DOC = """
    executor : {'threads', 'processes', 'sequential'}, Executor or None, default=None
        The pool every fit's workers share. None: the estimator's own ``executor``
        (threads when it has none either).
    store : str or None, default=None
        The parameter store every fit keeps its model in (each in its own namespace),
        e.g. ``"redis://host:6379/0"``; None: each estimator's own ``store`` setting.
    max_workers : int or None, default=None
        Most worker invocations in flight at once, over all fits together, in
        [1, inf). None: the number of CPUs.
    early_stopping : {'median', 'halving'} or None, default=None
        Score each fit on its fold's held-out part with the search's scorer, and stop
        the candidates that fall behind: below the median of the others on the same
        fold at the same epoch, at every epoch from the second on (``'median'``), or
        outside the best third by mean score over the folds at epochs 2, 6, 18, 54...,
        once every running fit has reached that epoch (``'halving'``: successive halving
        as scikit-learn's ``HalvingGridSearchCV``, with epochs for the resource; only
        those epochs are scored). A stopped candidate is scored as it stands. Needs our
        estimators, or a ``Pipeline`` ending in one.
    dashboard : bool or str, default=False
        Serve a live page while the search runs (``sklearn_cirrus.dashboard``: curves,
        the candidates' table, buttons to stop candidates or the search); its URL is
        printed and kept in ``dashboard_url_``. True: on 127.0.0.1 at a free port;
        ``"host"`` or ``"host:port"``: there, and anywhere but loopback the URL carries
        a token the page requires. While a page is open, every fit is scored on its
        fold's held-out part at every epoch, as with ``early_stopping``, for the
        page's score curves.
        Needs ``pip install "sklearn-cirrus[dashboard]"``.
    resources : dict or None, default=None
        ``{'deadline': seconds}`` and/or ``{'budget': dollars}`` (``fit_report_``'s
        estimate, summed over the fits): once the search's clock or bill, with one
        more epoch of every running fit, would pass it, every fit stops at its next
        epoch checkpoint and is scored as it stands (``stopped_by``: 'deadline' or
        'budget'), with a :class:`~sklearn_cirrus.exceptions.ResourceLimitWarning`.
        The refit of the best candidate comes after and is not limited by it (the
        estimator's own ``resources`` limit it). None: no limit.
    verbose : int, default=0
        0: silent. 1 and more: a progress bar over the fits (needs tqdm), and
        scikit-learn's messages.
"""

_SEARCH_ATTRIBUTES_DOC = """
    cv_results_ : dict of numpy arrays
        scikit-learn's, with more columns: ``split{k}_stop_epoch`` (epochs each fit
        ran; -1 if it failed), ``early_stopped`` and ``stopped_by`` ('median',
        'halving', 'by hand', 'deadline', 'budget' or ''), and the candidate's
        ``worker_seconds`` and ``cost_usd`` over its folds (AWS Lambda prices: see ``fit_report_``).
    loss_curves_ : list of list of dict
        ``loss_curves_[i][k]``: candidate ``i`` on fold ``k``, epoch by epoch, as arrays
        ``epoch``, ``seconds`` (since the search started), ``loss`` (training loss),
        ``score`` (held-out score; NaN without early stopping), ``worker_seconds`` and
        ``cost_usd`` so far.
    peak_workers_ : int
        The most invocations that were in flight at once during the search.
    dashboard_url_ : str
        Where the live page was served (with ``dashboard``).
"""


class ServerlessGridSearchCV(_ServerlessSearch, GridSearchCV):
    __doc__ = f"""Exhaustive search over a grid, every fit at once on one shared pool of workers.

    Parameters
    ----------
    estimator : estimator object
        A serverless estimator, or a ``Pipeline`` holding one; every ``executor``
        parameter in it is pointed at the search's shared pool during the search.
    param_grid : dict or list of dicts
        As in :class:`sklearn.model_selection.GridSearchCV`.
    scoring, refit, cv, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.GridSearchCV`.
    {_SEARCH_PARAMETERS_DOC}
    Attributes
    ----------
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_,
    refit_time_, multimetric_
        As in :class:`sklearn.model_selection.GridSearchCV`.
    {_SEARCH_ATTRIBUTES_DOC}
    See Also
    --------
    ServerlessRandomizedSearchCV : The same over sampled candidates.
    sklearn.model_selection.GridSearchCV : The search this one runs, fit by fit.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_cirrus import ServerlessSGDClassifier
    >>> from sklearn_cirrus.model_selection import ServerlessGridSearchCV
    >>> X, y = make_classification(n_samples=600, random_state=0)
    >>> search = ServerlessGridSearchCV(
    ...     ServerlessSGDClassifier(random_state=0), {{"alpha": [1e-4, 1e-2]}},
    ...     executor="threads", max_workers=2, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['alpha']
    >>> search.peak_workers_ <= 2
    True
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in GridSearchCV._parameter_constraints.items() if k != "n_jobs"},
        **_ServerlessSearch._serverless_constraints,
    }

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        scoring=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
        executor=None,
        store=None,
        max_workers=None,
        early_stopping=None,
        dashboard=False,
        resources=None,
    ):
        super().__init__(
            estimator,
            param_grid,
            scoring=scoring,
            n_jobs=None,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.executor = executor
        self.store = store
        self.max_workers = max_workers
        self.early_stopping = early_stopping
        self.dashboard = dashboard
        self.resources = resources

    def _n_candidates(self) -> int:
        return len(ParameterGrid(self.param_grid))


class ServerlessRandomizedSearchCV(_ServerlessSearch, RandomizedSearchCV):
    __doc__ = f"""Search over sampled candidates, every fit at once on one shared pool.

    Parameters
    ----------
    estimator : estimator object
        A serverless estimator, or a ``Pipeline`` holding one.
    param_distributions : dict or list of dicts
        As in :class:`sklearn.model_selection.RandomizedSearchCV`.
    n_iter, scoring, refit, cv, pre_dispatch, random_state, error_score, return_train_score
        As in :class:`sklearn.model_selection.RandomizedSearchCV`.
    {_SEARCH_PARAMETERS_DOC}
    Attributes
    ----------
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_,
    refit_time_, multimetric_
        As in :class:`sklearn.model_selection.RandomizedSearchCV`.
    {_SEARCH_ATTRIBUTES_DOC}
    See Also
    --------
    ServerlessGridSearchCV : The same over every point of a grid.

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_cirrus import ServerlessSGDClassifier
    >>> from sklearn_cirrus.model_selection import ServerlessRandomizedSearchCV
    >>> X, y = make_classification(n_samples=600, random_state=0)
    >>> search = ServerlessRandomizedSearchCV(
    ...     ServerlessSGDClassifier(random_state=0), {{"alpha": loguniform(1e-5, 1e-1)}},
    ...     n_iter=4, executor="threads", cv=3, random_state=0).fit(X, y)
    >>> len(search.cv_results_["params"])
    4
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in RandomizedSearchCV._parameter_constraints.items() if k != "n_jobs"},
        **_ServerlessSearch._serverless_constraints,
    }

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        n_iter=10,
        scoring=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        random_state=None,
        error_score=np.nan,
        return_train_score=False,
        executor=None,
        store=None,
        max_workers=None,
        early_stopping=None,
        dashboard=False,
        resources=None,
    ):
        super().__init__(
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=None,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.executor = executor
        self.store = store
        self.max_workers = max_workers
        self.early_stopping = early_stopping
        self.dashboard = dashboard
        self.resources = resources

    def _n_candidates(self) -> int:
        # the length of a sampler draws nothing: the search's random_state is untouched
        return len(ParameterSampler(self.param_distributions, self.n_iter))
