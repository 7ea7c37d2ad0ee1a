"""Surviving a parameter store that loses the model mid-fit.

A Redis server restarted without persistence (a failover, an eviction, a managed
service's maintenance) comes back empty: the workers' next exchange finds no model
(:class:`~sklearn_cirrus.exceptions.StoreLost`) and nothing of the fit is left in the
store. For such stores (``may_lose_state``) the driver keeps the tables of a finished
epoch (parameters, optimizer state, penalty columns and counters, as ``pull_table``
reads them): the last one's, unless saving every epoch would take more than a tenth
of the fit's time, or come more often than once a second. Once the invocations in
flight have ended, it puts them back and trains again from there. Local stores cannot
lose their arrays while their fit runs, so nothing is kept for them.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ..model_table import ModelTable
from ..store.base import ParameterStore
from ..store.memory import MemoryStore
from .stopping import StopRule

# at most this share of a fit's time goes to saving epochs: an epoch ending sooner after
# the last save than that save's cost allows is not saved (a loss of the model then
# trains the epochs since the one saved again). A small model's epochs on a store
# nearby are short: on ml-latest-small, 2 process workers on Redis, a save took 13-20
# ms of a 75 ms epoch, while servers are lost hours apart.
SAVE_COST_SHARE = 0.1
# nor more often than this: training a second again costs less than saving within it
# (the first save of a fit on ml-latest-small took 65 ms, 6 times the time writing the
# starting point took, and came after its first epoch, 126 ms in)
SAVE_MIN_SECONDS = 1.0


@dataclass
class SavedEpoch:
    n_iter: int
    tables: dict[str, ModelTable] | None  # None: the fit's starting point
    rule: StopRule  # the stopping rule as it stood


class EpochSaver:
    """Keeps the last epoch of a fit on a store that may lose it, and puts it back."""

    def __init__(
        self,
        store: ParameterStore,
        keys: list[str],
        create_keys: Callable[[ParameterStore], None],
        rule: StopRule,
    ):
        self.store = store
        self.keys = keys
        self.create_keys = create_keys
        self.enabled = store.may_lose_state
        self.saved = SavedEpoch(0, None, copy.deepcopy(rule))
        self.last_save_seconds = 0.0
        self.last_saved_at = -math.inf

    def write_start(self) -> None:
        """Write the fit's starting point into the store. It counts as the first save
        (``put_back`` writes it again), and writing it as costing what a save does: on
        a small model, the first epochs end sooner than a save's budget allows."""
        started = time.perf_counter()
        self.create_keys(self.store)
        self.last_saved_at = time.perf_counter()
        self.last_save_seconds = self.last_saved_at - started

    def save(self, n_iter: int, rule: StopRule, last: bool = False) -> None:
        """Keep the model as epoch ``n_iter`` ended, unless the last save was too recent
        for its cost (``SAVE_COST_SHARE``, ``SAVE_MIN_SECONDS``) and this is not the
        fit's ``last`` epoch."""
        started = time.perf_counter()
        since = started - self.last_saved_at
        too_soon = since < max(self.last_save_seconds / SAVE_COST_SHARE, SAVE_MIN_SECONDS)
        if not self.enabled or (too_soon and not last):
            return
        tables = {key: self.store.pull_table(key) for key in self.keys}
        self.saved = SavedEpoch(n_iter, tables, copy.deepcopy(rule))
        self.last_saved_at = time.perf_counter()
        self.last_save_seconds = self.last_saved_at - started

    def epoch(self, n_iter: int) -> MemoryStore | None:
        """The model as epoch ``n_iter`` ended, if it is the epoch saved: a store to
        read it from without reading the remote one again."""
        if self.saved.n_iter != n_iter or self.saved.tables is None:
            return None
        return MemoryStore.holding(self.saved.tables)

    def lost(self) -> bool:
        """Whether the store no longer holds the model (asked after a failure)."""
        return self.enabled and not all(self.store.holds(key) for key in self.keys)

    def put_back(self, during_epoch: int) -> SavedEpoch:
        """Recreate the model as it was at the end of the saved epoch; says so."""
        saved = self.saved
        if saved.tables is None:
            self.create_keys(self.store)
        else:
            for key, table in saved.tables.items():
                self.store.restore(key, table)
        warnings.warn(
            f"the parameter store lost the model during epoch {during_epoch} (was its server "
            f"restarted?); training goes on from the end of epoch {saved.n_iter}",
            RuntimeWarning,
            stacklevel=2,
        )
        return saved
