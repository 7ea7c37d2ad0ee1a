"""Parameter stores: where the model lives while workers train it.

``make_store(spec)`` turns the estimators' ``store=`` parameter into a fresh store:
``"memory"`` (this process; threads), ``"shm"`` (shared memory; local processes),
``"redis://host:port/db"`` (a Redis server, for workers anywhere; ``rediss://`` for TLS),
``"ray"`` (a Ray actor, for workers on Ray), or None to let the executor choose.
"""

from __future__ import annotations

from ..model_table import LEARNING_RATES, OPTIMIZERS, OptimizerConfig
from .base import ArrayStore, ParameterStore, StoreHandle
from .memory import MemoryStore
from .shared_memory import SharedMemoryStore


def _redis_store(spec: str) -> ParameterStore:
    from .redis_store import RedisStore

    return RedisStore(spec)


def _ray_store(spec: str) -> ParameterStore:
    from .ray_actor import RayActorStore

    return RayActorStore()


# name -> factory(spec); the URL schemes pass their whole spec on
STORES = {
    "memory": lambda spec: MemoryStore(),
    "shm": lambda spec: SharedMemoryStore(),
    "shared_memory": lambda spec: SharedMemoryStore(),
    "redis": _redis_store,
    "rediss": _redis_store,
    "ray": _ray_store,
}


def make_store(spec: str | None, *, in_process: bool) -> ParameterStore:
    """A new, empty store for one fit.

    ``in_process`` says whether the workers share the driver's memory; it picks the
    default store and rules out ``"memory"`` for workers in other processes.
    """
    if spec is None:
        spec = "memory" if in_process else "shm"
    name = _scheme(spec)
    if name not in STORES:
        raise ValueError(f"unknown store {spec!r}; valid stores are {sorted(STORES)}")
    if name == "memory" and not in_process:
        raise ValueError(
            "store='memory' lives in the driver's process and cannot be reached by workers "
            "in other processes; use store='shm' (local processes) or a server store"
        )
    return STORES[name](spec)


def may_lose_state(spec: str | None) -> bool:
    """Whether the store ``spec`` names can lose the model mid-fit (a server restarted),
    so that the fit may train some epochs again from its last saved one."""
    return _scheme(spec) in ("redis", "rediss")


def keeps_a_log(spec: str | None) -> bool:
    """Whether the store ``spec`` names is a server's, whose workers train on replicas
    of the whole model and load it as a base and a log of entries (``delta_log``)."""
    return _scheme(spec) in ("redis", "rediss", "ray")


def _scheme(spec: str | None) -> str | None:
    """The store's name in ``spec``: a URL's scheme, or the spec itself."""
    return None if spec is None else spec.split("://", 1)[0]


__all__ = [
    "ArrayStore",
    "LEARNING_RATES",
    "MemoryStore",
    "OPTIMIZERS",
    "OptimizerConfig",
    "ParameterStore",
    "SharedMemoryStore",
    "StoreHandle",
    "keeps_a_log",
    "make_store",
    "may_lose_state",
]
