"""scikit-learn estimators trained the Cirrus way: asynchronous SGD on serverless workers."""

from importlib import import_module

from .exceptions import (
    DamagedData,
    ResourceLimitWarning,
    StoreLost,
    WorkerError,
    WorkerLost,
    WorkerOutOfMemory,
    WorkerTimeout,
)

__version__ = "0.1.0"

# Estimators load on first use, so that a worker process, which imports only the
# runtime, starts without importing scikit-learn.
_LAZY = {
    "ServerlessSGDClassifier": ".linear_model",
    "ServerlessSGDRegressor": ".linear_model",
    "ServerlessMatrixFactorization": ".recommend",
    "fetch_libsvm": ".datasets",
    "fetch_movielens": ".datasets",
    "load_movielens": ".datasets",
    "make_hashed_classification": ".datasets",
    "make_ratings": ".datasets",
    "ShardedDataset": ".dataset",
    "ServerlessGridSearchCV": ".model_selection",
    "ServerlessRandomizedSearchCV": ".model_selection",
}

__all__ = [
    "ServerlessGridSearchCV",
    "ServerlessRandomizedSearchCV",
    "ServerlessMatrixFactorization",
    "ServerlessSGDClassifier",
    "ServerlessSGDRegressor",
    "ShardedDataset",
    "WorkerError",
    "WorkerLost",
    "WorkerOutOfMemory",
    "WorkerTimeout",
    "StoreLost",
    "DamagedData",
    "ResourceLimitWarning",
    "__version__",
    "fetch_libsvm",
    "fetch_movielens",
    "load_movielens",
    "make_hashed_classification",
    "make_ratings",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
