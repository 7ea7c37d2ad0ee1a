"""Model kernels: the maths of each model, pure and free of I/O (compiled where hot)."""

from .._compiled import import_error

try:
    from . import _sgd  # noqa: F401  (the compiled kernels: built by pip, not in git)
except ImportError as exc:
    raise import_error(__file__, "_sgd", exc) from exc

from ..data.batch import Batch
from .linear import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, LinearKernel, RowIndexer, loss_values

__all__ = [
    "Batch",
    "CLASSIFICATION_LOSSES",
    "LinearKernel",
    "REGRESSION_LOSSES",
    "RowIndexer",
    "loss_values",
]
