"""The parameter store protocol, and the part of it every array-backed store shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from typing import Protocol

import numpy as np

from ..model_table import (
    ETA_SCALE_SLOT,
    T_SLOT,
    ModelTable,
    OptimizerConfig,
    block_width,
    new_meta,
    up_to_date_params,
)


class StoreHandle(Protocol):
    """A small picklable address that a worker turns into a live store."""

    def connect(self) -> ParameterStore: ...


class ParameterStore(ABC):
    """Where a model lives while workers train it.

    A store holds named parameter arrays with their update rule (``create``), returns
    rows of the model brought up to date (``pull``), lends its arrays to workers that
    share its memory (``table``) and lets the others pull copies of rows and add back
    what they changed (``pull_table``, ``add_table``). Small named
    counters and flags let the driver and workers coordinate (``incr``, ``get``,
    ``set_flag``, ``is_flag_set``). Everything a store holds belongs to one namespace
    and goes with ``delete``. ``handle()`` gives the picklable address workers
    reconnect with.
    """

    # whether the store can lose what it holds while a fit runs (a server restarted):
    # then it also offers ``holds(key)`` and ``restore(key, table)``, and the driver
    # keeps each epoch's tables to put back
    may_lose_state = False

    @abstractmethod
    def create(
        self,
        key: str,
        init: np.ndarray,
        optimizer: OptimizerConfig,
        state: np.ndarray | None = None,
        samples_seen: float = 0.0,
    ) -> None:
        """Store ``init`` (2-D) under ``key``, updated by ``optimizer`` on every push.

        ``state`` and ``samples_seen`` restore the optimizer's per-coordinate state
        (:meth:`pull_state`) and schedule position (:meth:`samples_seen`), so that
        training can resume where it stopped.
        """

    def pull(self, key: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A copy of ``key``'s rows ``rows`` (every row if None), penalty brought up to date."""
        if not self.optimizer(key).penalised:
            return self._pull_params(key, rows)
        live = self.table(key)
        if live is not None:  # read in place: no copy of the optimizer's columns
            return up_to_date_params(live, rows, pulled=False)
        return up_to_date_params(self.pull_table(key, rows), rows, pulled=True)

    @abstractmethod
    def _pull_params(self, key: str, rows: np.ndarray | None) -> np.ndarray:
        """A copy of the stored parameter rows, as they are."""

    @abstractmethod
    def optimizer(self, key: str) -> OptimizerConfig:
        """The update rule ``key`` was created with."""

    def table(self, key: str) -> ModelTable | None:
        """The live arrays of ``key`` when this process can update them in place, else None."""
        return None

    @abstractmethod
    def pull_table(self, key: str, rows: np.ndarray | None = None) -> ModelTable:
        """Copies of every array of rows ``rows`` of ``key``, and of its metadata."""

    @abstractmethod
    def add_table(self, key: str, rows: np.ndarray | None, delta: ModelTable) -> None:
        """Add ``delta`` (rows aligned with ``rows``) to ``key``'s arrays and metadata.

        The remote update path: a worker trains on a pulled copy and pushes what changed.
        Concurrent adds never lose each other's changes (each is atomic in the store).
        """

    @abstractmethod
    def pull_state(self, key: str) -> np.ndarray | None:
        """A copy of the optimizer's per-coordinate state, or None for plain SGD."""

    @abstractmethod
    def samples_seen(self, key: str) -> float:
        """How many samples have been pushed to ``key``: the ``t`` of the schedules."""

    @abstractmethod
    def scale_learning_rate(self, key: str, factor: float) -> None:
        """Multiply the step size of ``key`` by ``factor`` (the 'adaptive' schedule)."""

    @abstractmethod
    def incr(self, name: str, amount: float = 1.0) -> float:
        """Add ``amount`` to counter ``name`` (created at 0) and return the new value."""

    @abstractmethod
    def get(self, name: str) -> float:
        """The value of counter ``name`` (0 if never incremented)."""

    def set_flag(self, name: str) -> None:
        """Raise flag ``name``; flags are counters that are only ever set to 1."""
        if not self.is_flag_set(name):
            self.incr(name)

    def is_flag_set(self, name: str) -> bool:
        return self.get(name) > 0

    def claim(self) -> None:
        """Record this process as the owner of the store's namespace, for as long as it
        runs or until :meth:`delete`; first remove what fits whose owner is gone left.
        Stores that outlive the driver's process (servers) do; the others need not."""

    @abstractmethod
    def delete(self) -> None:
        """Remove everything in this store's namespace."""

    @abstractmethod
    def handle(self) -> StoreHandle:
        """A picklable address from which a worker reconnects to this store."""

    def close(self) -> None:
        """Drop this connection (the data stays until ``delete``)."""


class ArrayStore(ParameterStore):
    """A store whose keys are numpy arrays reachable from this process.

    Subclasses say where the arrays live (:meth:`_allocate`, :meth:`_arrays`) and how
    counters are kept; pull, push and the optimizers are shared.
    """

    @abstractmethod
    def _allocate(self, key: str, shape: tuple[int, int], optimizer: OptimizerConfig) -> None:
        """Make a zeroed block (see :func:`block_width`) and metadata array for key."""

    @abstractmethod
    def _arrays(self, key: str) -> ModelTable:
        """The live arrays of ``key``; KeyError names a missing key."""

    def _add_lock(self, key: str):
        """A context manager that serialises table adds, or a no-op."""
        return nullcontext()

    def create(self, key, init, optimizer, state=None, samples_seen=0.0):
        init = np.asarray(init, dtype=np.float64)
        if init.ndim != 2:
            raise ValueError(f"parameters must be 2-D, got shape {init.shape}")
        try:
            self._allocate(key, init.shape, optimizer)
        except MemoryError as exc:
            width = block_width(init.shape[1], optimizer)
            raise MemoryError(
                f"the parameter store cannot hold {key!r}: {init.shape[0]:,} rows of {width} "
                f"float64 columns (parameters, optimizer state, penalty), "
                f"{init.shape[0] * width * 8 / 2**30:.1f} GiB. A linear model has a row for "
                "each column of X: hash the features into fewer (ServerlessFeatureHasher, "
                "n_features=2**20)"
            ) from exc
        table = self._arrays(key)
        if init.any():  # a new block is zeros already: a model started from zero costs nothing
            table.params[...] = init
        if state is not None and optimizer.has_state:
            table.state[...] = state
        table.meta[...] = new_meta(samples_seen)

    def optimizer(self, key):
        return self._arrays(key).optimizer

    def table(self, key):
        return self._arrays(key)

    def _pull_params(self, key, rows):
        params = self._arrays(key).params
        return np.array(params if rows is None else params[rows])  # a plain array, never a map

    def pull_table(self, key, rows=None):
        table = self._arrays(key)
        index = slice(None) if rows is None else rows

        def rows_of(array):
            return np.array(array[index]) if array.shape[0] else np.array(array)

        return ModelTable(
            rows_of(table.params),
            rows_of(table.state),
            rows_of(table.aux),
            np.array(table.meta),
            table.optimizer,
        )

    def add_table(self, key, rows, delta):
        table = self._arrays(key)
        index = slice(None) if rows is None else rows
        with self._add_lock(key):
            for array, change in (
                (table.params, delta.params),
                (table.state, delta.state),
                (table.aux, delta.aux),
            ):
                if array.shape[0]:
                    array[index] += change
            table.meta += delta.meta

    def pull_state(self, key):
        table = self._arrays(key)
        return np.array(table.state) if table.optimizer.has_state else None

    def samples_seen(self, key):
        return float(self._arrays(key).meta[T_SLOT])

    def scale_learning_rate(self, key, factor):
        self._arrays(key).meta[ETA_SCALE_SLOT] *= factor
