"""Workers in local processes, each invocation a fresh process with hard limits.

Each invocation is forked from a forkserver that has already imported the worker
runtime, so starting one costs milliseconds, and every invocation starts stateless,
as a serverless function does. The child limits its address space with
``RLIMIT_AS`` (an allocation past ``memory_mb`` raises ``MemoryError``, reported as
:class:`~sklearn_cirrus.exceptions.WorkerOutOfMemory`) and the parent ends it at
``timeout_s`` (:class:`~sklearn_cirrus.exceptions.WorkerTimeout`). A child that dies
without a report, for instance to a signal, becomes
:class:`~sklearn_cirrus.exceptions.WorkerLost`. Nothing hangs: a process pool would
break for good when one child is killed, one process per invocation does not.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import traceback
from concurrent.futures import Future

from threadpoolctl import threadpool_limits

from ..exceptions import WorkerError, WorkerLost, WorkerOutOfMemory, WorkerTimeout
from .base import Executor, WorkerResources

_PRELOAD = ["sklearn_cirrus.runtime.worker"]
_MB = 2**20
# Room a worker needs above the bare runtime before it can hold any data at all.
_MIN_HEADROOM_MB = 32
_runtime_mb_cache: dict[str, int] = {}


def _address_space_mb() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    return pages * resource.getpagesize() // _MB


def _child_main(conn, fn, task, resources: WorkerResources) -> None:
    try:
        if resources.memory_mb is not None:
            runtime_mb = _address_space_mb()
            if resources.memory_mb < runtime_mb + _MIN_HEADROOM_MB:
                raise WorkerOutOfMemory(
                    f"worker_memory_mb={resources.memory_mb} is below the "
                    f"{runtime_mb + _MIN_HEADROOM_MB} MB the worker runtime needs to start"
                )
            limit = resources.memory_mb * _MB
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with threadpool_limits(limits=resources.cpus, user_api="blas"):
            result = fn(task)
        conn.send(("ok", result))
    except MemoryError:
        conn.send(("oom", traceback.format_exc()))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _runtime_mb_probe(_) -> int:
    return _address_space_mb()


class ProcessExecutor(Executor):
    """One process per invocation, memory and time limits enforced (see module doc).

    Parameters
    ----------
    start_method : {"forkserver", "spawn"}, default="forkserver"
        How children start. ``"fork"`` is refused: forking a threaded driver is unsafe.
    """

    enforces_memory = True
    enforces_timeout = True

    def __init__(self, start_method: str = "forkserver"):
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        self.start_method = start_method
        self._live: set = set()
        self._lock = threading.Lock()

    def _context(self):
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            context.set_forkserver_preload(_PRELOAD)
        return context

    @property
    def runtime_memory_mb(self) -> int:
        """Address space of a worker process before it loads data (measured once)."""
        if self.start_method not in _runtime_mb_cache:
            _runtime_mb_cache[self.start_method] = self.submit(_runtime_mb_probe, None).result()
        return _runtime_mb_cache[self.start_method] + _MIN_HEADROOM_MB

    def submit(self, fn, task, resources=WorkerResources()):
        context = self._context()
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child_main,
            args=(sender, fn, task, resources),
            daemon=True,
            name="cirrus-worker",
        )
        future: Future = Future()
        future.set_running_or_notify_cancel()
        process.start()
        sender.close()
        with self._lock:
            self._live.add(process)
        threading.Thread(
            target=self._watch, args=(process, receiver, future, resources), daemon=True
        ).start()
        return future

    def _watch(self, process, receiver, future: Future, resources: WorkerResources) -> None:
        try:
            if receiver.poll(resources.timeout_s):
                status, payload = receiver.recv()
            else:
                process.kill()
                status, payload = "timeout", None
        except EOFError:
            status, payload = "lost", None
        finally:
            process.join()
            receiver.close()
            with self._lock:
                self._live.discard(process)
        if status == "ok":
            future.set_result(payload)
        elif status == "oom":
            future.set_exception(
                WorkerOutOfMemory(
                    f"worker went over worker_memory_mb={resources.memory_mb}:\n{payload}"
                )
            )
        elif status == "timeout":
            future.set_exception(
                WorkerTimeout(
                    f"worker ran past worker_timeout={resources.timeout_s} s and was ended"
                )
            )
        elif status == "lost":
            future.set_exception(
                WorkerLost(
                    f"worker process ended with exit code {process.exitcode} without reporting"
                )
            )
        else:
            future.set_exception(WorkerError(f"worker raised {payload}"))

    def shutdown(self):
        with self._lock:
            live = list(self._live)
        for process in live:
            process.kill()
