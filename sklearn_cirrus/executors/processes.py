"""Workers in local processes with enforced memory and time limits.

Invocations run in warm worker processes, as a serverless platform reuses warm
containers: a process started from a forkserver that has already imported the worker
runtime serves one invocation at a time, then waits for the next. Each invocation is
still stateless (it gets only its task and reconnects to the store); what stays warm is
the interpreter, so a fit does not pay a process start per invocation.

A new worker process never imports the user's main script (``multiprocessing`` would, in
every new process: seconds of imports for a script that imports scikit-learn, paid again
by each process that replaces a lost one, and a script without the ``__main__`` guard
would start fits in its workers). Tasks travel pickled by ``cloudpickle``, as loky's do,
which carries functions and classes the script defined by value, so the worker does not
need the script; scripts read from stdin, ``-c`` and notebooks run alike.

Limits: a worker process caps its own address space with ``RLIMIT_AS`` (an allocation
past ``memory_mb`` raises ``MemoryError``, reported as
:class:`~sklearn_cirrus.exceptions.WorkerOutOfMemory`), and the executor ends it at
``timeout_s`` (:class:`~sklearn_cirrus.exceptions.WorkerTimeout`). A process that dies
without a report, for instance to a signal, becomes
:class:`~sklearn_cirrus.exceptions.WorkerLost`. A process that broke a limit or died is
never reused; a new one takes its place. Nothing hangs.
"""

from __future__ import annotations

import atexit
import multiprocessing
import resource
import sys
import threading
import time
import traceback
from collections import defaultdict
from concurrent.futures import Future
from contextlib import contextmanager

import cloudpickle
import numpy as np
from threadpoolctl import threadpool_limits

from ..exceptions import DamagedData, WorkerError, WorkerLost, WorkerOutOfMemory, WorkerTimeout
from .base import Executor, WorkerResources

_PRELOAD = ["sklearn_cirrus.runtime.worker"]
_MB = 2**20
# Room a worker needs above the bare runtime before it can hold any data at all.
_MIN_HEADROOM_MB = 32
# Idle warm processes kept per memory limit; more are ended when they finish.
_MAX_IDLE = 8
# Tries of the runtime-memory probe before the executor gives up.
_PROBE_TRIES = 3
# how a process start fails when the forkserver dies under it, or fork is refused
_START_FAILURES = (EOFError, OSError)
# Seconds waited before each further try of a start that failed. A forkserver killed
# refuses connections until it is gone, which takes the kernel milliseconds (its memory
# torn down); multiprocessing starts a new one at the first try after that. Tried at
# once, every start in those milliseconds failed (the pool's first ones three times).
_START_BACKOFF_S = (0.05, 0.2, 0.8)
_EXITED_AT_START = (
    "a worker process exited with code {code} as it started, before running anything "
    "(its own message is above, on stderr)"
)


def _address_space_mb() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    return pages * resource.getpagesize() // _MB


def _limit_memory(memory_mb: int | None) -> None:
    if memory_mb is None:
        return
    runtime_mb = _address_space_mb()
    if memory_mb < runtime_mb + _MIN_HEADROOM_MB:
        raise WorkerOutOfMemory(
            f"worker_memory_mb={memory_mb} is below the {runtime_mb + _MIN_HEADROOM_MB} MB "
            "the worker runtime needs to start"
        )
    limit = memory_mb * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm_up_blas(cpus: int) -> None:
    """Fix the BLAS thread count and let BLAS allocate its buffers now.

    OpenBLAS maps its work buffers on the first call and exits the process when that
    fails; under an address-space limit set earlier, that first call killed about one
    worker in ten. Allocated before the limit, the buffers count as runtime.
    """
    threadpool_limits(limits=cpus, user_api="blas")
    block = np.ones((128, 128))
    block @ block


def _serve(conn, resources: WorkerResources) -> None:
    """A warm worker process: run invocations received on ``conn`` until told to stop."""
    _warm_up_blas(resources.cpus)
    try:
        _limit_memory(resources.memory_mb)
    except MemoryError:
        startup_failure = traceback.format_exc()
    else:
        startup_failure = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, ConnectionResetError):  # the driver is gone (killed, say)
            return
        if message is None:
            return
        if startup_failure is not None:
            conn.send(("oom", startup_failure))
            return
        fn, task = cloudpickle.loads(message)
        try:
            conn.send(("ok", fn(task)))
        except MemoryError:
            # a process that ran out of memory may be left fragmented: never reuse it
            conn.send(("oom", traceback.format_exc()))
            return
        except DamagedData as exc:  # (its type tells the driver not to try again)
            conn.send(("damaged", str(exc)))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"))


def _limits(resources: WorkerResources) -> tuple:
    """What a warm process is bound to for life; the timeout is per invocation."""
    return resources.memory_mb, resources.cpus


def _runtime_mb_probe(_) -> int:
    return _address_space_mb()


_STANDARD_START_METHODS = (None, "fork", "spawn", "forkserver")
_start_lock = threading.Lock()


@contextmanager
def _child_can_start(method: str):
    """Let a new worker process start whatever this one was started as.

    - A new process re-applies its parent's global start method; inside a joblib/loky
      worker (``GridSearchCV(n_jobs=2)``) that is ``"loky"``, which a plain child cannot
      resolve: the method ``method`` is presented while it starts.
    - A new process re-imports its parent's main script (from ``__main__.__file__``, or
      by name after ``python -m``): the main is hidden while the process starts, so that
      it is not (see module doc).
    """
    main = sys.modules.get("__main__")
    # (read under the lock: a thread starting a process at the same time hides them too)
    with _start_lock:
        hidden = {n: getattr(main, n) for n in ("__file__", "__spec__") if hasattr(main, n)}
        current = multiprocessing.get_start_method(allow_none=True)
        if current not in _STANDARD_START_METHODS:
            multiprocessing.set_start_method(method, force=True)
        if "__file__" in hidden:
            del main.__file__
        if "__spec__" in hidden:
            main.__spec__ = None  # as for a script run by path
        try:
            yield
        finally:
            for name, value in hidden.items():
                setattr(main, name, value)
            if current not in _STANDARD_START_METHODS:
                multiprocessing.set_start_method(current, force=True)


def _start(context, resources: WorkerResources, start_method: str) -> _WarmProcess:
    """A new warm process, its start tried again after a failure (see _START_BACKOFF_S);
    raises the last failure."""
    for wait in _START_BACKOFF_S:
        try:
            return _WarmProcess(context, resources, start_method)
        except _START_FAILURES:
            time.sleep(wait)
    return _WarmProcess(context, resources, start_method)


class _WarmProcess:
    def __init__(self, context, resources: WorkerResources, start_method: str):
        self.connection, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child_end, resources), daemon=True, name="cirrus-worker"
        )
        with _child_can_start(start_method):
            self.process.start()
        child_end.close()

    def end(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                self.process.kill()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class ProcessExecutor(Executor):
    """Warm local worker processes with memory and time limits (see module doc).

    Parameters
    ----------
    start_method : {"forkserver", "spawn"}, default="forkserver"
        How worker processes start. ``"fork"`` is refused: forking a threaded driver
        is unsafe.
    """

    enforces_memory = True
    enforces_timeout = True

    def __init__(self, start_method: str = "forkserver"):
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        self.start_method = start_method
        # idle processes by the limits they were started with (memory, cpus)
        self._idle: dict[tuple, list[_WarmProcess]] = defaultdict(list)
        self._busy: set[_WarmProcess] = set()
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._runtime_mb: int | None = None

    def __getstate__(self):
        # a pickled executor is its settings; worker processes start anew where it lands
        return {"start_method": self.start_method}

    def __setstate__(self, state):
        self.__init__(state["start_method"])

    def _context(self):
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            context.set_forkserver_preload(_PRELOAD)
        return context

    @property
    def runtime_memory_mb(self) -> int:
        """Address space of a worker process before it loads data (measured once)."""
        # one probe, even when many fits (a search's drivers) ask at once
        with self._probe_lock:
            if self._runtime_mb is None:
                # in a process of its own: a warm one may carry what earlier invocations
                # loaded (pyarrow's libraries, after converting CSV files)
                self._runtime_mb = self._probe_runtime_mb() + _MIN_HEADROOM_MB
        return self._runtime_mb

    def _probe_runtime_mb(self) -> int:
        # a probe killed from outside, or that could not start (the forkserver gone as it
        # forked), is a lost invocation like any other: tried again
        lost = None
        for _ in range(_PROBE_TRIES):
            try:
                probe = _start(self._context(), WorkerResources(), self.start_method)
            except _START_FAILURES as exc:
                lost = f"{type(exc).__name__}: {exc}"
                continue
            try:
                probe.connection.send(cloudpickle.dumps((_runtime_mb_probe, None)))
                status, payload = probe.connection.recv()
            except (EOFError, OSError):
                probe.process.join(timeout=5)
                code = probe.process.exitcode
                if code is not None and code >= 0:
                    raise WorkerError(_EXITED_AT_START.format(code=code)) from None
                lost = f"exit code {code}"
                continue
            finally:
                probe.end()
            if status != "ok":
                raise WorkerError(f"the worker runtime could not start: {payload}")
            return payload
        raise WorkerLost(
            f"the pool of worker processes cannot start: its first process was lost "
            f"{_PROBE_TRIES} times (last: {lost}); worker processes are being killed from "
            "outside, or this machine refuses new processes"
        )

    def _checkout(self, resources: WorkerResources) -> _WarmProcess:
        with self._lock:
            idle = self._idle[_limits(resources)]
            worker = idle.pop() if idle else None
        if worker is None:
            worker = _start(self._context(), resources, self.start_method)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _checkin(self, worker: _WarmProcess, resources: WorkerResources, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            idle = self._idle[_limits(resources)]
            keep = reusable and len(idle) < _MAX_IDLE
            if keep:
                idle.append(worker)
        if not keep:
            worker.end(kill=not reusable)

    def submit(self, fn, task, resources=WorkerResources()):
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            worker = self._checkout(resources)
        except _START_FAILURES as exc:  # a lost invocation: the driver's retry budget
            future.set_exception(
                WorkerLost(f"a worker process could not start: {type(exc).__name__}: {exc}")
            )
            return future
        threading.Thread(
            target=self._run, args=(worker, fn, task, resources, future), daemon=True
        ).start()
        return future

    def _wait(self, worker: _WarmProcess, resources: WorkerResources) -> bool:
        """Wait for the worker's answer, at most its timeout; whether it came."""
        return worker.connection.poll(resources.timeout_s)

    def _run(self, worker: _WarmProcess, fn, task, resources: WorkerResources, future) -> None:
        try:
            worker.connection.send(cloudpickle.dumps((fn, task)))
            if self._wait(worker, resources):
                status, payload = worker.connection.recv()
            else:
                status, payload = "timeout", None
        except (EOFError, OSError):
            status, payload = "lost", None
        except Exception as exc:  # the task or its function could not be pickled
            status, payload = "error", f"{type(exc).__name__}: {exc}"
        if status == "lost":
            worker.process.join(timeout=5)
        self._checkin(worker, resources, reusable=status in ("ok", "error"))
        if status == "ok":
            future.set_result(payload)
        elif status == "oom":
            future.set_exception(
                WorkerOutOfMemory(
                    f"worker went over worker_memory_mb={resources.memory_mb}:\n{payload}"
                )
            )
        elif status == "damaged":
            future.set_exception(DamagedData(payload))
        elif status == "timeout":
            future.set_exception(
                WorkerTimeout(
                    f"worker ran past worker_timeout={resources.timeout_s} s and was ended"
                )
            )
        elif status == "lost":
            future.set_exception(
                WorkerLost(
                    f"worker process ended with exit code {worker.process.exitcode} "
                    "without reporting"
                )
            )
        else:
            future.set_exception(WorkerError(f"worker raised {payload}"))

    def shutdown(self) -> None:
        """End every worker process, idle or busy."""
        with self._lock:
            idle = [w for workers in self._idle.values() for w in workers]
            busy = list(self._busy)
            self._idle.clear()
        for worker in idle:
            worker.end()
        for worker in busy:
            worker.process.kill()


_shared: ProcessExecutor | None = None
_shared_lock = threading.Lock()


def shared_process_executor() -> ProcessExecutor:
    """The process-wide executor behind ``executor="processes"``.

    Its warm processes outlive one fit, so that a grid search or a loop of fits starts
    them once; they are ended when the interpreter exits.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ProcessExecutor()
            atexit.register(_shared.shutdown)
        return _shared
