"""A parameter store held by a Ray actor: ``store="ray"``, for workers that run on Ray.

The actor keeps a :class:`~sklearn_cirrus.store.memory.MemoryStore` and serves one call at
a time, so adds are atomic. Workers train on replicas of the whole model, as against
Redis (``store/redis_store.py``), and exchange log entries with the actor every few
minibatches. As Redis does, the actor only keeps the entries (the latest ones,
:class:`~sklearn_cirrus.store.delta_log.EntryLog`, for the others to catch up from) and
tells one worker now and then to fold those its table lacks by sending its replica:
the workers apply every entry to their replicas anyway, and the actor applying them
too took 0.7 s of CPU of a 3.3 s fit on two cores (1,000,000 hashed rows, two workers).
A read of the table (a replica's load, the driver's pulls) first applies what is left.
Its handle is a Ray actor handle: only Ray tasks (the ``RayExecutor``) and the driver
that started Ray can use it. Arrays travel through Ray's object store, never as pickled
Python objects of the user's.

A fit's actor, emptied, serves the next fit of the same Ray session (``_IdleActor``), as
Ray reuses its task workers' processes: a new actor's process took 0.1-0.25 s to answer
its first call after the driver had staged the data (1,000,000 hashed rows, 2 cores),
a tenth of the fit's training.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._extras import require
from ..model_table import block_copy, block_of
from .base import ParameterStore
from .delta_log import FOLD_CLAIM_SECONDS, EntryLog, Exchange, apply_entry
from .memory import MemoryStore

# the entries the actor keeps for workers to catch up from, in models' worth of bytes
KEEP_LOG_SIZE = 2
# the calls that read or change the table's arrays: the entries it lacks are applied first
_TABLE_CALLS = frozenset({"pull", "_pull_params", "pull_table", "pull_state", "add_table"})


class _StoreActor:
    def __init__(self):
        self.store = MemoryStore()
        self.logs: dict[str, EntryLog] = {}
        # per key: the entries the table lacks (from position ``folded`` on), their
        # bytes, and when a worker was last told to fold them
        self.unfolded: dict[str, list[np.ndarray]] = {}  # (entries as byte arrays)
        self.unfolded_bytes: dict[str, int] = {}
        self.folded: dict[str, int] = {}
        self.fold_told: dict[str, float] = {}

    def call(self, method: str, *args, **kwargs):
        if method == "create":
            self._forget(args[0])
        elif method in _TABLE_CALLS:
            self._apply_unfolded(args[0])
        return getattr(self.store, method)(*args, **kwargs)

    def reset(self) -> None:
        """Empty the actor for another fit."""
        self.__init__()

    def _forget(self, key: str) -> None:
        for per_key in (self.logs, self.unfolded, self.unfolded_bytes, self.folded, self.fold_told):
            per_key.pop(key, None)

    def _log(self, key: str) -> EntryLog:
        if key not in self.logs:
            table = self.store.table(key)
            size = sum(a.nbytes for a in (table.params, table.state, table.aux))
            self.logs[key] = EntryLog(KEEP_LOG_SIZE * size)
            self.unfolded[key], self.unfolded_bytes[key], self.folded[key] = [], 0, 0
        return self.logs[key]

    def _apply_unfolded(self, key: str) -> None:
        """Apply to the table the entries it lacks (a fold told to a worker is then
        refused: its replica would undo them)."""
        log, table = self._log(key), self.store.table(key)
        for entry in self.unfolded[key]:
            apply_entry(table, entry)
        self.unfolded[key], self.unfolded_bytes[key], self.folded[key] = [], 0, log.end

    def load_replica(self, key: str):
        self._apply_unfolded(key)
        return self.store.pull_table(key), self._log(key).end

    def exchange(
        self, key: str, entry: np.ndarray, meta_change: np.ndarray, cursor: int, fold_at: int
    ) -> Exchange:
        log, table = self._log(key), self.store.table(key)
        others = log.since(cursor)
        if len(entry):
            log.append(entry)
            self.unfolded[key].append(entry)
            self.unfolded_bytes[key] += len(entry)
        table.meta += meta_change
        # one worker at a time is told to fold a log grown past fold_at bytes (another
        # once FOLD_CLAIM_SECONDS have passed without the fold)
        now = time.monotonic()
        fold = 0 < fold_at < self.unfolded_bytes[key] and (
            now - self.fold_told.get(key, -math.inf) > FOLD_CLAIM_SECONDS
        )
        if fold:
            self.fold_told[key] = now
        return Exchange(self.folded[key], log.end, table.meta.copy(), others, fold)

    def exchange_keys(self, requests: dict) -> dict[str, Exchange]:
        return {key: self.exchange(key, *request) for key, request in requests.items()}

    def fold(self, key: str, replica: np.ndarray, folded: int, end: int) -> bool:
        """Take ``replica`` (the block of a worker's, the log applied up to ``end``) as
        the table, unless the table has taken entries since the worker last heard
        (``folded``)."""
        self.fold_told.pop(key, None)
        if folded != self.folded[key] or end <= folded:
            return False
        block_of(self.store.table(key))[...] = replica
        taken = self.unfolded[key][: end - folded]
        self.unfolded[key] = self.unfolded[key][end - folded :]
        self.unfolded_bytes[key] -= sum(len(entry) for entry in taken)
        self.folded[key] = end
        return True


class _IdleActor:
    """The actor of the last fit that ended, emptied, for the next store of the same Ray
    session (a session's job and node: a new ``ray.init`` starts another)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._actor = None
        self._session = None

    def take(self, ray):
        with self._lock:
            actor, session, self._actor = self._actor, self._session, None
        return actor if actor is not None and session == _session(ray) else None

    def give_back(self, ray, actor) -> bool:
        """Keep ``actor`` (emptied) unless one is kept already; says whether it was."""
        with self._lock:
            if self._actor is not None:
                return False
            self._actor, self._session = actor, _session(ray)
            return True


def _session(ray) -> tuple[str, str]:
    context = ray.get_runtime_context()
    return context.get_job_id(), context.get_node_id()


_IDLE_ACTOR = _IdleActor()


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
        An existing store actor to talk to; None takes the idle one of an ended fit of
        this Ray session, or starts a new one (Ray must be running).
    """

    def __init__(self, actor=None):
        ray = require("ray", what="store='ray'", extra="ray")
        if actor is None:
            if not ray.is_initialized():
                raise ConnectionError(
                    "store='ray' needs a running Ray: use executor=RayExecutor(), which starts it"
                )
            actor = _IDLE_ACTOR.take(ray) or ray.remote(num_cpus=0)(_StoreActor).remote()
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
        # (Ray hands arrays back read-only; a replica's rows are one block, as a
        # local store's: a row's values in one cache line)
        return block_copy(table), cursor

    def exchange(self, key, entry, meta_change, cursor, fold_at=0):
        return self.exchange_keys({key: (entry, meta_change, cursor, fold_at)})[key]

    def exchange_keys(self, requests):
        """``exchange`` for several keys, in one call of the actor."""
        # entries as arrays, which Ray moves through its object store without copying
        # them into a pickle (as bytes: 12-24 ms an exchange of 2.8 MB entries, both
        # ways; the entries come back as arrays too, read as bytes are)
        requests = {
            key: (np.frombuffer(entry, dtype=np.uint8), *rest)
            for key, (entry, *rest) in requests.items()
        }
        return self._ray.get(self._actor.exchange_keys.remote(requests))

    def fold(self, key, table, folded, end):
        # the replica's block, one buffer that Ray moves without pickling it (a table's
        # arrays, views into it, were pickled one by one: 70-260 ms a fold of 25 MB)
        block = block_of(table)
        if block is None:
            block = block_of(block_copy(table))
        return self._ray.get(self._actor.fold.remote(key, block, folded, end))

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
        """Empty the actor and keep it for the next fit (or end it if one is kept)."""
        try:
            self._ray.get(self._actor.reset.remote())
        except self._ray.exceptions.RayError:  # (the actor is gone)
            return
        if not _IDLE_ACTOR.give_back(self._ray, self._actor):
            self._ray.kill(self._actor)

    def handle(self):
        return RayActorStoreHandle(self._actor)
