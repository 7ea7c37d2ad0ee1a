"""scikit-learn estimators trained the Cirrus way: asynchronous SGD on serverless workers."""

from .exceptions import WorkerError, WorkerLost, WorkerOutOfMemory, WorkerTimeout
from .linear_model import ServerlessSGDClassifier, ServerlessSGDRegressor

__version__ = "0.1.0"

__all__ = [
    "ServerlessSGDClassifier",
    "ServerlessSGDRegressor",
    "WorkerError",
    "WorkerLost",
    "WorkerOutOfMemory",
    "WorkerTimeout",
    "__version__",
]
