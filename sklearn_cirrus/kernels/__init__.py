"""Model kernels: the maths of each model, pure and free of I/O (compiled where hot)."""

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

try:
    from . import _sgd  # noqa: F401  (the compiled kernels: built by pip, not in git)
except ImportError as exc:
    _here = Path(__file__).parent
    if (_here / "_sgd.pyx").exists() and not any(
        (_here / f"_sgd{suffix}").exists() for suffix in EXTENSION_SUFFIXES
    ):
        # As scikit-learn does: Python found a source checkout (a clone's root is the
        # current folder) whose extensions were never built, not the installed package.
        raise ImportError(
            f"sklearn_cirrus is imported from the source tree at {_here.parent.parent}, "
            "whose compiled kernels are not built. Build them in place with "
            "`pip install -e .` in that folder, or run Python from another folder to use "
            "the installed package."
        ) from exc
    raise

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
