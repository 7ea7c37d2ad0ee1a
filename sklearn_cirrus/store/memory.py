"""A parameter store in the memory of the driver's process, for in-process workers."""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass

import numpy as np

from ..model_table import ModelTable, block_width, new_meta, table_views
from .base import ArrayStore

# namespace -> live store, so that a handle unpickled in this process finds its store
_LIVE_STORES: weakref.WeakValueDictionary[str, MemoryStore] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class MemoryStoreHandle:
    namespace: str

    def connect(self) -> MemoryStore:
        try:
            return _LIVE_STORES[self.namespace]
        except KeyError:
            raise ConnectionError(
                f"memory store {self.namespace!r} is not in this process (it was deleted, "
                "or the worker runs in another process: use store='shm' or a server store)"
            ) from None


class MemoryStore(ArrayStore):
    """Arrays in this process: compiled kernels update them in place from worker
    threads, lock-free; table adds are serialised by one lock per key.

    Works with the sequential and threads executors only: a worker in another process
    cannot reach it.
    """

    def __init__(self, namespace: str | None = None):
        self.namespace = namespace or uuid.uuid4().hex
        self._keys: dict[str, ModelTable] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._counters: dict[str, float] = {}
        self._counter_lock = threading.Lock()
        _LIVE_STORES[self.namespace] = self

    @classmethod
    def holding(cls, tables: dict[str, ModelTable]) -> MemoryStore:
        """A store of ``tables`` as they are: a model already read, to read again."""
        store = cls()
        for key, table in tables.items():
            store._keys[key], store._locks[key] = table, threading.Lock()
        return store

    def _allocate(self, key, shape, optimizer):
        block = np.zeros((shape[0], block_width(shape[1], optimizer)))
        self._keys[key] = table_views(block, shape[1], optimizer, new_meta())
        self._locks[key] = threading.Lock()

    def _arrays(self, key):
        try:
            return self._keys[key]
        except KeyError:
            raise KeyError(f"no parameters named {key!r} in store {self.namespace!r}") from None

    def _add_lock(self, key):
        return self._locks[key]

    def incr(self, name, amount=1.0):
        with self._counter_lock:
            self._counters[name] = self._counters.get(name, 0.0) + amount
            return self._counters[name]

    def get(self, name):
        return self._counters.get(name, 0.0)

    def delete(self):
        self._keys.clear()
        self._counters.clear()
        _LIVE_STORES.pop(self.namespace, None)

    def handle(self):
        return MemoryStoreHandle(self.namespace)
