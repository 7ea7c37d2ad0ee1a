"""The model's tables: what a key's rows hold (weights, optimizer state, penalty clocks)
and the compiled routines that read, copy and encode them.

The bottom of the package: stores and kernels both build on it, and it imports nothing
of theirs.
"""

from .._compiled import import_error

try:
    from . import _reading  # noqa: F401  (compiled: built by pip, not in git)
except ImportError as exc:
    raise import_error(__file__, "_reading", exc) from exc

from .layout import (
    ModelTable,
    block_copy,
    block_of,
    block_width,
    table_views,
    up_to_date_params,
)
from .optimizers import (
    ETA_SCALE_SLOT,
    LEARNING_RATES,
    LOG_DECAY_SLOT,
    META_NAMES,
    META_SIZE,
    OPTIMIZERS,
    PENALTY_STEPS_SLOT,
    T_SLOT,
    OptimizerConfig,
    new_meta,
)

__all__ = [
    "ETA_SCALE_SLOT",
    "LEARNING_RATES",
    "LOG_DECAY_SLOT",
    "META_NAMES",
    "META_SIZE",
    "ModelTable",
    "OPTIMIZERS",
    "OptimizerConfig",
    "PENALTY_STEPS_SLOT",
    "T_SLOT",
    "block_copy",
    "block_of",
    "block_width",
    "new_meta",
    "table_views",
    "up_to_date_params",
]
