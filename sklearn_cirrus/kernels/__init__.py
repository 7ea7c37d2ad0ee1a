"""Model kernels: the maths of each model, pure and free of I/O (compiled where hot)."""

from .base import Batch
from .linear import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, LinearKernel, RowIndexer, loss_values

__all__ = [
    "Batch",
    "CLASSIFICATION_LOSSES",
    "LinearKernel",
    "REGRESSION_LOSSES",
    "RowIndexer",
    "loss_values",
]
