"""A parameter store held by a Ray actor: ``store="ray"``, for workers that run on Ray.

The actor keeps a :class:`~sklearn_cirrus.store.memory.MemoryStore` and serves one call at
a time, so adds are atomic. Workers train on replicas of the whole model, as against
Redis (``store/redis_store.py``), and exchange log entries with the actor every few
minibatches; the actor applies each entry to its table as it arrives and keeps the latest
ones (:class:`~sklearn_cirrus.store.delta_log.EntryLog`) for the others to catch up from.
Its handle is a Ray actor handle: only Ray tasks (the ``RayExecutor``) and the driver that
started Ray can use it. Arrays travel through Ray's object store, never as pickled Python
objects of the user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import ParameterStore
from .delta_log import DeltaEntry, EntryLog, Exchange, apply_entry
from .memory import MemoryStore

# the entries the actor keeps for workers to catch up from, in models' worth of bytes
KEEP_LOG_SIZE = 2


class _StoreActor:
    def __init__(self):
        self.store = MemoryStore()
        self.logs: dict[str, EntryLog] = {}

    def call(self, method: str, *args, **kwargs):
        if method == "create":
            self.logs.pop(args[0], None)
        return getattr(self.store, method)(*args, **kwargs)

    def _log(self, key: str) -> EntryLog:
        if key not in self.logs:
            table = self.store.table(key)
            size = sum(a.nbytes for a in (table.params, table.state, table.aux))
            self.logs[key] = EntryLog(KEEP_LOG_SIZE * size)
        return self.logs[key]

    def load_replica(self, key: str):
        return self.store.pull_table(key), self._log(key).end

    def exchange(self, key: str, entry: bytes, meta_change: np.ndarray, cursor: int) -> Exchange:
        log, table = self._log(key), self.store.table(key)
        others = log.since(cursor)
        if entry:
            apply_entry(table, DeltaEntry.from_bytes(entry))
            log.append(entry)
        table.meta += meta_change
        # (nothing to fold: the actor applies every entry as it arrives)
        return Exchange(log.end, log.end, table.meta.copy(), others)


@dataclass(frozen=True)
class RayActorStoreHandle:
    actor: Any

    def connect(self) -> RayActorStore:
        return RayActorStore(actor=self.actor)


class RayActorStore(ParameterStore):
    """Every call is forwarded to the actor (see module doc).

    Parameters
    ----------
    actor : ray.actor.ActorHandle or None
        An existing store actor to talk to; None starts a new one (Ray must be running).
    """

    def __init__(self, actor=None):
        try:
            import ray
        except ImportError:
            raise ImportError("store='ray' needs Ray: pip install sklearn-cirrus[ray]") from None
        if actor is None:
            if not ray.is_initialized():
                raise ConnectionError(
                    "store='ray' needs a running Ray: use executor=RayExecutor(), which starts it"
                )
            actor = ray.remote(num_cpus=0)(_StoreActor).remote()
        self._ray = ray
        self._actor = actor

    def _call(self, method: str, *args, **kwargs):
        return self._ray.get(self._actor.call.remote(method, *args, **kwargs))

    def create(self, key, init, optimizer, state=None, samples_seen=0.0):
        self._call("create", key, init, optimizer, state=state, samples_seen=samples_seen)

    def pull(self, key, rows=None):
        return self._call("pull", key, rows)

    def _pull_params(self, key, rows):
        return self._call("_pull_params", key, rows)

    def optimizer(self, key):
        return self._call("optimizer", key)

    def pull_table(self, key, rows=None):
        # Ray hands numpy arrays back read-only, straight from its object store; a pulled
        # table is the worker's own copy to train on
        return self._call("pull_table", key, rows).copy()

    def add_table(self, key, rows, delta):
        self._call("add_table", key, rows, delta)

    def load_replica(self, key):
        table, cursor = self._ray.get(self._actor.load_replica.remote(key))
        return table.copy(), cursor  # (Ray hands arrays back read-only)

    def exchange(self, key, entry, meta_change, cursor, fold_at=0):
        # (fold_at unused: the actor applies every entry as it arrives, nothing to fold)
        return self._ray.get(self._actor.exchange.remote(key, entry, meta_change, cursor))

    def fold(self, key, table, folded, end):
        return True  # the actor applies every entry as it arrives: nothing to fold

    def pull_state(self, key):
        return self._call("pull_state", key)

    def samples_seen(self, key):
        return self._call("samples_seen", key)

    def scale_learning_rate(self, key, factor):
        self._call("scale_learning_rate", key, factor)

    def incr(self, name, amount=1.0):
        return self._call("incr", name, amount)

    def get(self, name):
        return self._call("get", name)

    def delete(self):
        self._call("delete")
        self._ray.kill(self._actor)

    def handle(self):
        return RayActorStoreHandle(self._actor)
