"""Executors run worker invocations: sequentially, on threads, in local processes, on Dask.

``make_executor(spec)`` resolves the estimators' ``executor=`` parameter, which takes a
name, an :class:`Executor` instance, or None. New backends join the registry with
:func:`register_executor`.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Executor, WorkerResources
from .local import SequentialExecutor, ThreadExecutor
from .processes import ProcessExecutor, shared_process_executor
from .shaped import PlatformShapedExecutor

# name -> factory(spec) returning (executor, owned): an owned executor is shut down
# when the fit ends; the shared process executor keeps its processes warm across fits.
_REGISTRY: dict[str, Callable[[str], tuple[Executor, bool]]] = {
    "sequential": lambda spec: (SequentialExecutor(), True),
    "threads": lambda spec: (ThreadExecutor(), True),
    "processes": lambda spec: (shared_process_executor(), False),
    "dask": lambda spec: (_dask_executor(spec), True),
    "lithops": lambda spec: (_lithops_executor(), True),
}


def _dask_executor(spec: str) -> Executor:
    from .dask import DaskExecutor

    return DaskExecutor(spec)


def _lithops_executor() -> Executor:
    """Lithops with the configuration of its own config file."""
    from .lithops import LithopsExecutor

    return LithopsExecutor()


DEFAULT_EXECUTOR = "threads"


def register_executor(name: str, factory: Callable[[str], Executor]) -> None:
    """Make ``executor=name`` (or ``"name://..."``) build ``factory(spec)`` for each fit."""
    _REGISTRY[name] = lambda spec: (factory(spec), True)


def executor_names() -> list[str]:
    """The names an ``executor`` string may start with (``"dask"`` of ``"dask://host:port"``)."""
    return sorted(_REGISTRY)


def make_executor(spec: str | Executor | None) -> tuple[Executor, bool]:
    """Return ``(executor, owned)``; an owned executor is shut down by the fit that made it."""
    if isinstance(spec, Executor):
        return spec, False
    spec = DEFAULT_EXECUTOR if spec is None else spec
    name = spec.split("://", 1)[0]
    if name not in _REGISTRY:
        raise ValueError(f"unknown executor {spec!r}; valid executors are {executor_names()}")
    return _REGISTRY[name](spec)


# optional backends, imported on first use so that a missing extra costs nothing
_OPTIONAL = {"DaskExecutor": ".dask", "LithopsExecutor": ".lithops", "RayExecutor": ".ray"}


def __getattr__(name):
    if name in _OPTIONAL:
        from importlib import import_module

        return getattr(import_module(_OPTIONAL[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DaskExecutor",
    "Executor",
    "LithopsExecutor",
    "ProcessExecutor",
    "PlatformShapedExecutor",
    "RayExecutor",
    "SequentialExecutor",
    "ThreadExecutor",
    "WorkerResources",
    "make_executor",
    "register_executor",
]
