"""Workers as Dask tasks: ``executor=DaskExecutor(client)`` or ``executor="dask://host:port"``.

Each invocation is one task (``pure=False``, so Dask never deduplicates two of them).
Limits map onto Dask where Dask has them: a Dask worker's own ``memory_limit`` pauses
and restarts a worker that grows too large, and ``fit`` refuses a ``worker_memory_mb``
larger than what every Dask worker may use. Below that, the worker runtime keeps
``worker_memory_mb`` itself: an invocation whose resident memory grows past it raises
``WorkerOutOfMemory``. Dask cannot stop a running task, so the timeout is kept by the
worker runtime, which returns by itself at its time budget, and by this executor, which
gives up on a task at ``timeout_s`` (``WorkerTimeout``) and cancels it.

Workers reach the data and the store by their handles: on a cluster on this machine the
defaults (shards in ``/dev/shm``, the shared-memory store) work; on a remote cluster use
``store="redis://..."`` and a ``data_url`` every worker can read.
"""

from __future__ import annotations

from .._extras import require
from ..exceptions import WorkerTimeout
from .base import Executor, WorkerResources, future_from


class DaskExecutor(Executor):
    """Run worker invocations on a Dask cluster (see module doc).

    Parameters
    ----------
    client : distributed.Client, str or None
        A connected client, a scheduler address (``"tcp://host:8786"`` or
        ``"dask://host:8786"``), or None for the current default client.
    """

    enforces_timeout = True

    def __init__(self, client=None):
        distributed = require("distributed", what="DaskExecutor", extra="dask")
        self._owns_client = isinstance(client, str)
        if client is None:
            client = distributed.default_client()
        elif self._owns_client:
            client = distributed.Client(client.replace("dask://", "tcp://", 1))
        self.client = client

    def worker_memory_limit_mb(self) -> float | None:
        """The smallest ``memory_limit`` of the cluster's workers, in MB (None: unlimited)."""
        limits = [w.get("memory_limit") for w in self.client.scheduler_info()["workers"].values()]
        limits = [limit for limit in limits if limit]
        return min(limits) / 2**20 if limits else None

    def submit(self, fn, task, resources=WorkerResources()):
        limit = self.worker_memory_limit_mb()
        if resources.memory_mb is not None and limit is not None and resources.memory_mb > limit:
            raise ValueError(
                f"worker_memory_mb={resources.memory_mb} is more than the {limit:.0f} MB a "
                "worker of this Dask cluster may use (its memory_limit)"
            )
        dask_future = self.client.submit(fn, task, pure=False)
        timeout_s = resources.timeout_s

        def translate(exc: Exception) -> BaseException:
            if isinstance(exc, TimeoutError):
                dask_future.cancel()
                return WorkerTimeout(
                    f"worker ran past worker_timeout={timeout_s} s and was abandoned"
                )
            return exc  # the task's own exception, its traceback kept by Dask

        return future_from(lambda: dask_future.result(timeout=timeout_s), translate)

    def shutdown(self) -> None:
        """Close the client if this executor opened it from an address."""
        if self._owns_client:
            self.client.close()
