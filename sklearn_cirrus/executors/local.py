"""Executors that run workers inside the driver's process: sequential and threads."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from threadpoolctl import threadpool_limits

from .base import Executor, WorkerResources


def _call_with_cpus(fn, task, cpus):
    with threadpool_limits(limits=cpus, user_api="blas"):
        return fn(task)


class SequentialExecutor(Executor):
    """Runs each invocation to completion inside ``submit``: the deterministic path.

    With one worker and a fixed ``random_state``, two fits give identical models,
    which makes this the executor for exact tests and debugging.
    """

    in_process = True

    def submit(self, fn, task, resources=WorkerResources()):
        future: Future = Future()
        try:
            future.set_result(fn(task))
        except Exception as exc:  # the driver decides what a failure means; ^C still stops
            future.set_exception(exc)
        return future


class ThreadExecutor(Executor):
    """Runs invocations on a thread pool in this process.

    Neither memory nor hard timeouts can be enforced on threads; workers still stop
    by themselves before ``timeout_s``.
    """

    in_process = True

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn, task, resources=WorkerResources()):
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="cirrus-worker")
        return self._pool.submit(_call_with_cpus, fn, task, resources.cpus)

    def __getstate__(self):
        # a pickled executor is its settings; the pool is started anew where it lands
        return {"max_workers": self.max_workers, "_pool": None}

    def shutdown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
