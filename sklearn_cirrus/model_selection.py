"""Hyperparameter search where every candidate and fold trains at once on one worker pool.

:class:`ServerlessGridSearchCV` is scikit-learn's ``GridSearchCV``: the same candidates,
splits, scoring, ``cv_results_``, ``best_params_`` and refit. What changes is where the
fits run: all candidate x fold fits start together, each in a driver thread, and their
workers share one executor that never has more than ``max_workers`` invocations in flight.
"""

from __future__ import annotations

import os
from numbers import Integral

from joblib import parallel_config
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, ParameterGrid, check_cv
from sklearn.utils._param_validation import Interval

from .executors import Executor, make_executor
from .executors.throttle import ThrottledExecutor

# driver threads at most: each mostly waits on its workers
_MAX_CONCURRENT_FITS = 64


def _executor_parameters(estimator) -> list[str]:
    """Names of the ``executor`` parameters of the estimator and anything nested in it."""
    return [name for name in estimator.get_params() if name.split("__")[-1] == "executor"]


class ServerlessGridSearchCV(GridSearchCV):
    """Exhaustive search over a grid, every fit at once on one shared pool of workers.

    Parameters
    ----------
    estimator : estimator object
        A serverless estimator, or a ``Pipeline`` holding one; every ``executor``
        parameter in it is pointed at the search's shared pool during the search.
    param_grid : dict or list of dicts
        As in :class:`sklearn.model_selection.GridSearchCV`.
    scoring, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.GridSearchCV`.
    executor : {'threads', 'processes', 'sequential'}, Executor or None, default=None
        The pool every fit's workers share. None: ``"processes"``.
    max_workers : int or None, default=None
        Most worker invocations in flight at once, over all fits together, in
        [1, inf). None: the number of CPUs.

    Attributes
    ----------
    cv_results_, best_estimator_, best_score_, best_params_, best_index_, scorer_,
    n_splits_, refit_time_, multimetric_
        As in :class:`sklearn.model_selection.GridSearchCV`.
    peak_workers_ : int
        The most invocations that were in flight at once during the search.

    See Also
    --------
    sklearn.model_selection.GridSearchCV : The search this one runs, fit by fit.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_cirrus import ServerlessSGDClassifier
    >>> from sklearn_cirrus.model_selection import ServerlessGridSearchCV
    >>> X, y = make_classification(n_samples=600, random_state=0)
    >>> search = ServerlessGridSearchCV(
    ...     ServerlessSGDClassifier(random_state=0), {"alpha": [1e-4, 1e-2]},
    ...     executor="threads", max_workers=2, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['alpha']
    >>> search.peak_workers_ <= 2
    True
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in GridSearchCV._parameter_constraints.items() if k != "n_jobs"},
        "executor": [str, Executor, None],
        "max_workers": [Interval(Integral, 1, None, closed="left"), None],
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
        error_score=float("nan"),
        return_train_score=False,
        executor=None,
        max_workers=None,
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
        self.max_workers = max_workers

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
        inner, owned = make_executor("processes" if self.executor is None else self.executor)
        shared = ThrottledExecutor(inner, self.max_workers or os.cpu_count() or 1)
        names = _executor_parameters(self.estimator)
        original_estimator = self.estimator
        original_executors = {name: self.estimator.get_params()[name] for name in names}
        n_splits = check_cv(self.cv, y, classifier=is_classifier(self.estimator)).get_n_splits(
            X, y, params.get("groups")
        )
        n_fits = len(ParameterGrid(self.param_grid)) * n_splits
        try:
            self.estimator = clone(original_estimator).set_params(**dict.fromkeys(names, shared))
            # fits are drivers that mostly wait: one thread each, all at once
            with parallel_config(backend="threading", n_jobs=min(n_fits, _MAX_CONCURRENT_FITS)):
                super().fit(X, y, **params)
        finally:
            self.estimator = original_estimator
            if owned:
                inner.shutdown()
        if hasattr(self, "best_estimator_"):
            # the refitted model keeps the user's settings, not the search's live pool
            self.best_estimator_.set_params(**original_executors)
        self.peak_workers_ = shared.peak_in_flight
        return self
