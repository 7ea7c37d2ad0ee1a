"""Workers as serverless functions through Lithops: AWS Lambda, Google Cloud Functions,
IBM Code Engine, Kubernetes, or Lithops' localhost backend.

``executor=LithopsExecutor(config)`` takes Lithops' own configuration (a dict, or None for
its config file). Each invocation is one ``call_async``: ``worker_memory_mb`` becomes the
function's ``runtime_memory`` and ``worker_timeout`` its ``timeout``, which the cloud
platforms enforce (the localhost backend ignores the memory). Functions in the cloud
cannot reach this machine's memory: give the estimator ``store="redis://..."`` on a
server they can reach and a ``data_url`` on object storage they can read
(``docs/backends.md`` has an AWS Lambda set-up).
"""

from __future__ import annotations

import math
import threading

from .._extras import require
from ..exceptions import WorkerTimeout
from ..platforms import AWS_LAMBDA, Platform
from .base import Executor, WorkerResources, future_from

# How often a call's status is checked; Lithops' default of 1 s dominated short invocations.
_POLL_SECONDS = 0.05


class LithopsExecutor(Executor):
    """Run worker invocations as Lithops function calls (see module doc).

    Parameters
    ----------
    config : dict or None, default=None
        Lithops configuration, as ``lithops.FunctionExecutor(config=...)`` takes it; None
        reads Lithops' configuration file.
    platform : Platform or None, default=None
        The platform's prices and CPU rule, for ``plan()`` and ``n_workers="auto"``;
        None: :data:`~sklearn_cirrus.platforms.AWS_LAMBDA` on Lithops' ``aws_lambda``
        backend, this machine's cores on ``localhost``, else none known (give one).
    **executor_options
        Passed on to ``lithops.FunctionExecutor`` (``backend``, ``storage``, ``runtime``...).
    """

    enforces_memory = True
    enforces_timeout = True

    def __init__(
        self, config: dict | None = None, *, platform: Platform | None = None, **executor_options
    ):
        require("lithops", what="LithopsExecutor", extra="lithops")
        self.config = config
        self.executor_options = executor_options
        backend = executor_options.get("backend") or (config or {}).get("lithops", {}).get(
            "backend"
        )
        self.platform = platform or (AWS_LAMBDA if backend == "aws_lambda" else None)
        self._executor = None
        self._lock = threading.Lock()

    def _lithops(self):
        with self._lock:
            if self._executor is None:
                import lithops

                self._executor = lithops.FunctionExecutor(
                    config=self.config, **self.executor_options
                )
            return self._executor

    def submit(self, fn, task, resources=WorkerResources()):
        timeout = None if resources.timeout_s is None else max(1, math.ceil(resources.timeout_s))
        # The runtime has sklearn-cirrus installed: for our worker, shipping modules would
        # only cost time (Lithops scans the package and all it imports at every call).
        # Any other function travels with the modules it needs, but for ours.
        package = __name__.split(".")[0]
        ours = fn.__module__.split(".")[0] == package
        response = self._lithops().call_async(
            fn,
            (task,),
            runtime_memory=resources.memory_mb,
            timeout=timeout,
            include_modules=None if ours else [],
            exclude_modules=[package],
        )

        def translate(exc: Exception) -> BaseException:
            if isinstance(exc, TimeoutError):
                return WorkerTimeout(
                    f"worker ran past worker_timeout={resources.timeout_s} s: {exc}"
                )
            return exc  # the function's own exception, re-raised by Lithops

        return future_from(
            lambda: response.result(throw_except=True, wait_dur_sec=_POLL_SECONDS), translate
        )

    def shutdown(self) -> None:
        """Remove what Lithops staged for the calls of this executor."""
        with self._lock:
            if self._executor is not None:
                self._executor.clean()
                self._executor = None
