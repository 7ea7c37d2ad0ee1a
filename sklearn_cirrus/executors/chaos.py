"""An executor that loses invocations on purpose, to see a fit survive them.

:class:`KillingProcessExecutor` is the processes executor with a killer inside: each
invocation, with probability ``share``, has its worker process ``SIGKILL``-ed at a random
moment of its expected run, as a platform that reclaims containers or an out-of-memory
killer would. It is how the test suite and ``benchmarks/bench_faults.py`` measure fault
tolerance; use it the same way to check a pipeline before it meets a real platform::

    from sklearn_cirrus.executors.chaos import KillingProcessExecutor

    executor = KillingProcessExecutor(share=0.2, random_state=0)
    clf = ServerlessSGDClassifier(executor=executor, n_workers=2).fit(X, y)
    executor.kills, clf.fit_report_["failures"]
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time

from .processes import ProcessExecutor


class KillingProcessExecutor(ProcessExecutor):
    """Warm worker processes, a ``share`` of whose invocations are killed midway.

    The moment of the kill is uniform over the median run time of the invocations
    finished so far (``first_delay_s`` until one has finished), so that most aimed
    kills land while the invocation runs (the median: a new process's first invocation,
    which imports the main script again, is no guide); an invocation that ends first is
    spared.
    ``kills`` counts the kills that landed.
    """

    def __init__(self, share: float, *, first_delay_s: float = 0.05, random_state=None):
        super().__init__()
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        self.share = share
        self.first_delay_s = first_delay_s
        self.kills = 0
        self._random = random.Random(random_state)
        self._seconds = []  # run times of finished invocations
        self._kill_lock = threading.Lock()

    def __getstate__(self):
        raise TypeError("KillingProcessExecutor is for a local process and is not pickled")

    def _run(self, worker, fn, task, resources, future) -> None:
        with self._kill_lock:
            aimed = self._random.random() < self.share
            typical = statistics.median(self._seconds) if self._seconds else None
            delay = self._random.uniform(0, typical or self.first_delay_s)
        killer = None
        if aimed:
            killer = threading.Timer(delay, self._kill, (worker,))
            killer.start()
        started = time.perf_counter()
        try:
            super()._run(worker, fn, task, resources, future)
        finally:
            if killer is not None:
                killer.cancel()
        if future.exception() is None:
            with self._kill_lock:
                self._seconds.append(time.perf_counter() - started)

    def _kill(self, worker) -> None:
        try:
            os.kill(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        with self._kill_lock:
            self.kills += 1
