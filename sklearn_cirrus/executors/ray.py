"""Workers as Ray tasks: ``executor=RayExecutor()`` (a local Ray) or ``RayExecutor(address)``.

Each invocation is one Ray task with ``num_cpus`` from the worker's resources and
``memory`` set to ``worker_memory_mb``, which Ray uses to place tasks; Ray does not cap
a task's memory, so the worker runtime does (``WorkerOutOfMemory`` when an invocation's
resident memory grows past it). The executor gives up on a task at ``worker_timeout`` and cancels it
(``WorkerTimeout``); the worker returns by itself before that. Ray does not retry a task
here: relaunching is the driver's job. As with Dask, remote workers need
``store="redis://..."`` and a shared ``data_url``.
"""

from __future__ import annotations

from .._extras import require
from ..exceptions import WorkerTimeout
from .base import Executor, WorkerResources, future_from


def _invoke(fn, task):
    return fn(task)


class RayExecutor(Executor):
    """Run worker invocations as Ray tasks (see module doc).

    Parameters
    ----------
    address : str or None, default=None
        A Ray cluster to join; None starts (or reuses) a local Ray.
    **init_options
        Passed on to ``ray.init`` when this executor starts Ray (``num_cpus``...).
    """

    enforces_timeout = True

    def __init__(self, address: str | None = None, **init_options):
        ray = require("ray", what="RayExecutor", extra="ray")
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **init_options)
        self._ray = ray
        self._remote = ray.remote(max_retries=0)(_invoke)

    def submit(self, fn, task, resources=WorkerResources()):
        options = {"num_cpus": resources.cpus}
        if resources.memory_mb is not None:
            options["memory"] = resources.memory_mb * 2**20
        reference = self._remote.options(**options).remote(fn, task)
        ray = self._ray

        def translate(exc: Exception) -> BaseException:
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                ray.cancel(reference, force=True)
                return WorkerTimeout(
                    f"worker ran past worker_timeout={resources.timeout_s} s and was cancelled"
                )
            if isinstance(exc, ray.exceptions.RayTaskError):
                # the worker's own exception type, its remote traceback in the message
                return exc.as_instanceof_cause()
            return exc

        return future_from(lambda: ray.get(reference, timeout=resources.timeout_s), translate)

    def shutdown(self) -> None:
        """Stop Ray if this executor started it."""
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
