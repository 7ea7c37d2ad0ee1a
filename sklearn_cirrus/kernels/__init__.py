"""Model kernels: pure numpy/scipy losses and gradients, no I/O."""

from .linear import Batch, LinearKernel, RowIndexer
from .losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

__all__ = [
    "Batch",
    "CLASSIFICATION_LOSSES",
    "LinearKernel",
    "REGRESSION_LOSSES",
    "RowIndexer",
]
