"""What the engine asks of a model kernel; kernels are pure, picklable and do no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from .linear import Batch

# rows of each store key a minibatch needs, and the minibatch renumbered to match them
RowPlan = tuple[dict[str, np.ndarray], Batch]


class Kernel(Protocol):
    """A model's loss and gradient over parameters kept in the store as named 2-D arrays.

    ``init_params`` (kernel-specific arguments) returns ``{key: array}``; a worker asks
    ``row_planner()`` once per invocation for the callable that maps each minibatch to
    the rows it needs of every key, pulls those, calls ``loss_grad`` and pushes the
    gradients back to the same rows.
    """

    def row_planner(self) -> Callable[[Batch], RowPlan]: ...

    def loss_grad(
        self, params: dict[str, np.ndarray], batch: Batch
    ) -> tuple[float, dict[str, np.ndarray]]: ...

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int: ...
