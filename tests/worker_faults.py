"""What the driver tests run in worker processes instead of the worker: kept apart from
the test modules so that a new worker process, which imports the module a function lives
in to unpickle it, does not import scikit-learn and the tests' fixtures for it."""

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def explode(task):
    raise RuntimeError("worker exploded on purpose")


def allocate_too_much(task):
    np.ones(4 * 2**30 // 8)  # 4 GB, far above the worker's limit


def overspend(task):
    """The real worker, with its memory budget already spent: it must stop itself."""
    from sklearn_cirrus.runtime.worker import run_worker

    return run_worker(replace(task, memory_budget_mb=-1.0))


def hang(task):
    time.sleep(120)


def die(task):
    os.kill(os.getpid(), signal.SIGKILL)


def die_at_first_probe(marker, _):
    """The runtime-memory probe, killed from outside the first time it runs."""
    if not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    from sklearn_cirrus.executors.processes import _address_space_mb

    return _address_space_mb()
