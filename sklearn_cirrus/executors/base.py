"""The executor protocol: run a worker function on a task somewhere, get a Future."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..platforms import Platform


@dataclass(frozen=True)
class WorkerResources:
    """The limits of one worker invocation, as a serverless platform sets them.

    memory_mb : int or None
        Memory a worker may use; enforced by executors whose ``enforces_memory`` is True.
    timeout_s : float or None
        Wall-clock seconds one invocation may run; workers return early by themselves
        before it, and executors whose ``enforces_timeout`` is True end them at it.
    cpus : int
        CPUs a worker may use (its BLAS thread pool is limited to this).
    """

    memory_mb: int | None = None
    timeout_s: float | None = None
    cpus: int = 1


class Executor(ABC):
    """Runs worker invocations. Subclasses document the hooks and set the flags below.

    Attributes
    ----------
    in_process : bool
        Workers run in the driver's process and may use in-memory stores and data.
    enforces_memory, enforces_timeout : bool
        Whether ``WorkerResources`` limits are enforced (else only advisory).
    runtime_memory_mb : int
        Memory a worker needs before holding any data, counted the way this executor
        enforces its limit; ``fit`` rejects a ``worker_memory_mb`` below it plus a batch.
    platform : Platform or None
        The serverless platform the workers run on, whose memory sizes, CPU rule and
        prices ``plan()`` and ``n_workers="auto"`` apply; None: this machine's cores.
    """

    in_process: bool = False
    enforces_memory: bool = False
    enforces_timeout: bool = False
    runtime_memory_mb: int = 128
    platform: Platform | None = None

    @abstractmethod
    def submit(
        self, fn: Callable[[Any], Any], task: Any, resources: WorkerResources = WorkerResources()
    ) -> Future:
        """Start ``fn(task)`` under ``resources``; the Future holds its result or failure."""

    def shutdown(self) -> None:
        """Release pools and connections; pending invocations may be abandoned."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()


def future_from(
    get_result: Callable[[], Any], translate: Callable[[Exception], BaseException]
) -> Future:
    """A Future that a thread completes with ``get_result()``, or ``translate(exception)``.

    Backends whose handles block (Dask, Ray, Lithops) use it to look like
    ``concurrent.futures`` to the driver.
    """
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def wait() -> None:
        try:
            future.set_result(get_result())
        except Exception as exc:
            future.set_exception(translate(exc))

    threading.Thread(target=wait, daemon=True).start()
    return future
