"""The parameter store protocol, and the part of it every array-backed store shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from typing import Protocol

import numpy as np

from .optimizers import ETA_SCALE_SLOT, T_SLOT, OptimizerConfig, apply_update


class StoreHandle(Protocol):
    """A small picklable address that a worker turns into a live store."""

    def connect(self) -> ParameterStore: ...


class ParameterStore(ABC):
    """Where a model lives while workers train it.

    A store holds named parameter arrays (``create``), returns rows of them (``pull``)
    and applies the configured optimizer to pushed gradients (``push``). Small named
    counters and flags let the driver and workers coordinate (``incr``, ``get``,
    ``set_flag``, ``is_flag_set``). Everything a store holds belongs to one namespace
    and goes with ``delete``. ``handle()`` gives the picklable address workers
    reconnect with.
    """

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

    @abstractmethod
    def pull(self, key: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A copy of ``key``'s rows ``rows`` (every row if None)."""

    @abstractmethod
    def push(
        self, key: str, grad: np.ndarray, rows: np.ndarray | None = None, n_samples: int = 1
    ) -> None:
        """Apply the optimizer to rows ``rows`` for a gradient computed on ``n_samples``."""

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
        """Make zeroed params, state (same shape, or empty) and metadata arrays for key."""

    @abstractmethod
    def _arrays(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, OptimizerConfig]:
        """``(params, state, meta, optimizer)`` of ``key``; KeyError names a missing key."""

    def _push_lock(self, key: str):
        """A context manager that serialises pushes, or a no-op for lock-free stores."""
        return nullcontext()

    def create(self, key, init, optimizer, state=None, samples_seen=0.0):
        init = np.asarray(init, dtype=np.float64)
        if init.ndim != 2:
            raise ValueError(f"parameters must be 2-D, got shape {init.shape}")
        self._allocate(key, init.shape, optimizer)
        params, state_array, meta, _ = self._arrays(key)
        params[...] = init
        if state is not None and optimizer.has_state:
            state_array[...] = state
        meta[T_SLOT] = samples_seen
        meta[ETA_SCALE_SLOT] = 1.0

    def pull(self, key, rows=None):
        params = self._arrays(key)[0]
        return np.array(params if rows is None else params[rows])  # a plain array, never a map

    def push(self, key, grad, rows=None, n_samples=1):
        params, state, meta, optimizer = self._arrays(key)
        with self._push_lock(key):
            apply_update(optimizer, params, state, meta, grad, rows, n_samples)

    def pull_state(self, key):
        _, state, _, optimizer = self._arrays(key)
        return np.array(state) if optimizer.has_state else None

    def samples_seen(self, key):
        return float(self._arrays(key)[2][T_SLOT])

    def scale_learning_rate(self, key, factor):
        self._arrays(key)[2][ETA_SCALE_SLOT] *= factor
