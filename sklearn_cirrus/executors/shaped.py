"""Local worker processes shaped like a serverless platform's functions, to measure here
what a plan predicts there.

:class:`PlatformShapedExecutor` is the processes executor whose workers get the CPU a
platform gives their memory (``Platform.vcpus``: on AWS Lambda, 1,769 MB buys one vCPU,
512 MB 29% of one) and whose ``platform`` prices plans and "auto" choices. The CPU is
enforced as a CPU quota is (Linux CFS bandwidth control, ``cpu.max``): in every
``CPU_PERIOD_SECONDS`` a worker's process, all its threads together, may use its vCPUs'
worth of the period in CPU time, and once it has, it is paused (SIGSTOP) until the period
ends (SIGCONT); what it ran over is taken from the next period's. Time a worker spends
waiting (for its data, for the store, for one of this machine's cores) uses none of its
quota, as on the platform. What it does not shape: cold starts (its processes stay
warm), the network, and more workers than this machine has cores at full share. POSIX
only: a worker's CPU time is read from its process's CPU-time clock.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

from ..platforms import Platform
from .base import WorkerResources
from .processes import ProcessExecutor, _WarmProcess

# a CPU quota's period, Linux CFS's default
CPU_PERIOD_SECONDS = 0.1
# the shortest wait between two readings of a worker's CPU time (a reading costs tens of
# microseconds of the driver's)
SHORTEST_POLL_SECONDS = 0.001


def cpu_clock(pid: int) -> int:
    """The clock of the CPU time process ``pid`` uses, all its threads (for
    ``time.clock_gettime``)."""
    clock = ctypes.c_int()
    if ctypes.CDLL(None, use_errno=True).clock_getcpuclockid(pid, ctypes.byref(clock)):
        raise ProcessLookupError(pid)
    return clock.value


class PlatformShapedExecutor(ProcessExecutor):
    """Warm local worker processes with a platform's CPU share for their memory.

    Parameters
    ----------
    platform : Platform
        Whose ``vcpus(worker_memory_mb)`` each worker gets, and whose prices
        ``plan()`` and ``n_workers="auto"`` apply.
    start_method : {"forkserver", "spawn"}, default="forkserver"
        As for :class:`~sklearn_cirrus.executors.ProcessExecutor`.
    """

    def __init__(self, platform: Platform, start_method: str = "forkserver"):
        super().__init__(start_method)
        self.platform = platform

    def __getstate__(self):
        return {**super().__getstate__(), "platform": self.platform}

    def __setstate__(self, state):
        self.__init__(state["platform"], state["start_method"])

    def _wait(self, worker: _WarmProcess, resources: WorkerResources) -> bool:
        vcpus = None if resources.memory_mb is None else self.platform.vcpus(resources.memory_mb)
        if vcpus is None or vcpus >= (os.cpu_count() or 1):  # (no quota to keep)
            return super()._wait(worker, resources)
        deadline = None if resources.timeout_s is None else time.monotonic() + resources.timeout_s
        pid = worker.process.pid
        try:
            clock = cpu_clock(pid)
            quota = CPU_PERIOD_SECONDS * vcpus
            period_end, left = time.monotonic() + CPU_PERIOD_SECONDS, quota
            used = time.clock_gettime(clock)
            while True:
                # one thread uses quota no faster than the wall clock runs: no reading
                # before that much time has passed (more threads: what they ran over
                # is the next period's)
                waited = min(left, period_end - time.monotonic())
                if worker.connection.poll(max(waited, SHORTEST_POLL_SECONDS)):
                    return True
                if deadline is not None and time.monotonic() > deadline:
                    return False
                reading = time.clock_gettime(clock)
                left, used = left - (reading - used), reading
                if left > 0 and time.monotonic() < period_end:
                    continue
                if left <= 0:  # spent: paused until the period ends
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(max(period_end - time.monotonic(), 0.0))
                    reading = time.clock_gettime(clock)  # (it ran on until the signal came)
                    left, used = left - (reading - used), reading
                    os.kill(pid, signal.SIGCONT)
                # a new period: its quota, less what the last one ran over
                period_end = max(period_end + CPU_PERIOD_SECONDS, time.monotonic())
                left = quota + min(left, 0.0)
        except OSError:  # it ended (no clock, no process): its end of the pipe says how
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            return True
