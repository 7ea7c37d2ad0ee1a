"""A pipeline's leading steps that every candidate of a search shares, fitted once per fold.

In ``GridSearchCV(make_pipeline(HashingVectorizer(), model), {"model__alpha": ...})``
every candidate fits the vectorizer on the same fold and transforms the same rows: the
same work, once per candidate. As Dask-ML's searches do, the search wraps each step
before the first one it searches over in a :class:`SharedStep`, which fits and
transforms once per distinct input and hands the result to every candidate that asks
for it; the refitted pipeline gets the plain fitted steps back.
"""

from __future__ import annotations

import pickle
import threading

import joblib
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import Pipeline


class StepCache:
    """Fitted steps and their outputs, by the step's parameters and input; computed once
    when many threads ask for the same at once. Shared, never copied (as ``clone``
    deep-copies parameters)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[threading.Event, list]] = {}

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        # pickled (a search's scorer keeps the estimator it was made with): empty
        return StepCache, ()

    def get(self, key: str, compute):
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = (threading.Event(), [])
        done, value = entry
        if owner:
            try:
                value.append(compute())
            except BaseException:
                with self._lock:  # not kept: the next caller tries again, and is told
                    del self._entries[key]
                raise
            finally:
                done.set()
        else:
            done.wait()
            if not value:
                return self.get(key, compute)
        return value[0]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class SharedStep(TransformerMixin, BaseEstimator):
    """``step``, fitted and applied through ``cache``: a fit on an input seen before (the
    same parameters, rows and targets) returns the step fitted then, and a transform of
    rows seen before by that fitted step returns the same output."""

    def __init__(self, step=None, cache=None):
        self.step = step
        self.cache = cache

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        def fit():
            fitted = clone(self.step)
            return fitted, fitted.fit_transform(X, y)

        rows = joblib.hash(X)
        try:
            self.key_ = joblib.hash((type(self.step), self.step.get_params(), rows, y))
        except pickle.PicklingError:  # (a lambda among its parameters): not shared
            self.key_ = None
            self.step_, output = fit()
            return output
        self.step_, output = self.cache.get(self.key_, fit)
        # what a transform of the same rows gives
        self.cache.get(f"{self.key_}:{rows}", lambda: output)
        return output

    def transform(self, X):
        if self.key_ is None:
            return self.step_.transform(X)
        key = f"{self.key_}:{joblib.hash(X)}"
        return self.cache.get(key, lambda: self.step_.transform(X))

    def __sklearn_tags__(self):
        return self.step.__sklearn_tags__()


def share_leading_steps(pipeline, searched: set[str], cache: StepCache) -> dict:
    """The ``set_params`` that wrap ``pipeline``'s steps before the first one whose
    parameters are ``searched`` (nothing if it is not a Pipeline, or steps are replaced)."""
    if not isinstance(pipeline, Pipeline) or searched & {"steps", "memory"}:
        return {}
    shared = {}
    for name, step in pipeline.steps[:-1]:
        touched = any(key == name or key.startswith(f"{name}__") for key in searched)
        if touched or step is None or step == "passthrough":
            break
        shared[name] = SharedStep(step, cache)
    return shared


def unshare(pipeline):
    """``pipeline`` with each fitted :class:`SharedStep` replaced by its fitted step."""
    if isinstance(pipeline, Pipeline):
        for i, (name, step) in enumerate(pipeline.steps):
            if isinstance(step, SharedStep):
                pipeline.steps[i] = (name, step.step_ if hasattr(step, "step_") else step.step)
    return pipeline
