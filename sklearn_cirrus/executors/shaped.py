"""Local worker processes shaped like a serverless platform's functions, to measure here
what a plan predicts there.

:class:`PlatformShapedExecutor` is the processes executor whose workers get the CPU a
platform gives their memory (``Platform.cpu_share``: on AWS Lambda, 1,769 MB buys one
vCPU, 512 MB 29% of one) and whose ``platform`` prices plans and "auto" choices. The
share is enforced as a CPU quota is: the driver lets a worker run for ``share`` of every
``CPU_PERIOD_SECONDS`` and pauses it (SIGSTOP, SIGCONT) for the rest. What it does not
shape: cold starts (its processes stay warm), the network, and more workers than this
machine has cores at full share.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from ..platforms import Platform
from .base import WorkerResources
from .processes import ProcessExecutor, _WarmProcess

# a CPU quota's period, Linux CFS's default: a sum over 60M integers at 1,024 MB ran at
# 0.56 of a core against Lambda's 0.58 (at 20 ms, 0.66: a pause starts late)
CPU_PERIOD_SECONDS = 0.1


class PlatformShapedExecutor(ProcessExecutor):
    """Warm local worker processes with a platform's CPU share for their memory.

    Parameters
    ----------
    platform : Platform
        Whose ``cpu_share(worker_memory_mb)`` each worker gets, and whose prices
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
        share = 1.0 if resources.memory_mb is None else self.platform.cpu_share(resources.memory_mb)
        if share >= 1.0:
            return super()._wait(worker, resources)
        deadline = None if resources.timeout_s is None else time.monotonic() + resources.timeout_s
        running, paused = CPU_PERIOD_SECONDS * share, CPU_PERIOD_SECONDS * (1.0 - share)
        pid = worker.process.pid
        while not worker.connection.poll(running):
            if deadline is not None and time.monotonic() > deadline:
                return False
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                return True  # it ended: its end of the pipe says how
            time.sleep(paused)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return True
