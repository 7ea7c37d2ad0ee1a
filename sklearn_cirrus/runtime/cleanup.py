"""Undoing what a fit set up, all of it, whatever fails on the way."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager


class Cleanup:
    """Steps that undo a fit's setup (remove its shards, delete its store, shut its
    executor down), run in reverse order when the ``with`` block ends.

    Every step runs, even past one that fails (an unreachable store must not leave the
    shards behind). When the fit itself failed, its error is the one raised and a failing
    step becomes a warning, unless it failed with that same error (a store that could not
    be reached to train cannot be reached to delete either: one message says it); when the
    fit did not fail, the first failing step's error is raised.
    """

    def __init__(self):
        self._steps: list[Callable[[], object]] = []

    def add(self, step: Callable[[], object]) -> None:
        self._steps.append(step)

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        failures = []
        for step in reversed(self._steps):
            try:
                step()
            except Exception as failure:
                failures.append(failure)
        if exc is None and failures:
            raise failures[0]
        for failure in failures:
            if type(failure) is type(exc) and str(failure) == str(exc):
                continue
            warnings.warn(
                f"cleaning up after a failed fit failed too: {type(failure).__name__}: {failure}",
                RuntimeWarning,
                stacklevel=2,
            )
        return False


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def sigterm_cleans_up():
    """While the block runs, ``SIGTERM`` (a scheduler's stop, ``docker stop``) unwinds
    the main thread as ``SIGINT`` does, so that every cleanup on the way runs; the
    process then exits with status 143, as a process ended by ``SIGTERM`` reports.

    Installed only from the main thread and over the default action: a handler of the
    user's own is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
