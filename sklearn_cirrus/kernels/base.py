"""What the engine asks of a model kernel; kernels are pure, picklable and do no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..data.batch import Batch
from ..model_table import ModelTable, OptimizerConfig

# rows of each store key a minibatch needs, and the minibatch renumbered to match them
RowPlan = tuple[dict[str, np.ndarray], Batch]


class Kernel(Protocol):
    """A model kept in the store as named 2-D arrays, and how workers train it.

    ``init_params`` (kernel-specific arguments) returns ``{key: array}`` for every key
    of ``KEYS``, and ``update_rules`` the rule each key's store arrays follow.
    ``train_tables`` runs the compiled loop over a shard, ``batch_size`` rows a step,
    updating one :class:`ModelTable` a key in place: the store's own arrays when the
    worker shares its memory, else pulled copies of the rows the shard's ids index
    (``row_planner()`` maps a minibatch to those rows and renumbers it to match).
    ``read`` gives the model as it stands in a store, every row brought up to date;
    ``loss_of_zeros`` the mean loss of a model of zeros (None where not known), against
    which the driver tells a diverged training loss.
    """

    KEYS: tuple[str, ...]

    def update_rules(self, optimizer: OptimizerConfig) -> dict[str, OptimizerConfig]: ...

    def row_planner(self) -> Callable[[Batch], RowPlan]: ...

    def train_tables(
        self, tables: dict[str, ModelTable], shard: Batch, batch_size: int
    ) -> tuple[float, int]: ...

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int: ...

    def loss_of_zeros(self, y, sample_weight) -> float | None: ...

    def read(self, store) -> dict[str, np.ndarray]: ...
