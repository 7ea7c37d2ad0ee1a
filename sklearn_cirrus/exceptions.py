"""Typed failures of serverless workers, raised by ``fit`` once retries are spent."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning


class WorkerError(RuntimeError):
    """A worker invocation failed; the message carries the worker's own traceback."""


class WorkerOutOfMemory(WorkerError, MemoryError):
    """A worker went over ``worker_memory_mb``."""


class WorkerTimeout(WorkerError, TimeoutError):
    """A worker ran past ``worker_timeout`` seconds and was ended."""


class WorkerLost(WorkerError):
    """A worker died without reporting (killed by a signal, or its process crashed)."""


class StoreLost(KeyError):
    """The parameter store no longer holds the fit's model: its server restarted without
    persistence, or evicted or expired the keys. The driver puts the last epoch's
    checkpoint back and goes on."""

    def __str__(self) -> str:  # a sentence, not KeyError's quoted key
        return str(self.args[0]) if self.args else ""


class DamagedData(ValueError):
    """A shard or a manifest is not what was written (damaged, truncated, replaced): the
    message names its URL. A fit that meets one fails at once: reading it again would
    not mend it."""


class ResourceLimitWarning(ConvergenceWarning):
    """A fit stopped at its deadline or budget (``resources``) before it converged."""
