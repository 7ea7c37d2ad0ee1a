"""Surviving a parameter store that loses the model mid-fit.

A Redis server restarted without persistence (a failover, an eviction, a managed
service's maintenance) comes back empty: the workers' next exchange finds no model
(:class:`~sklearn_cirrus.exceptions.StoreLost`) and nothing of the fit is left in the
store. For such stores (``may_lose_state``) the driver keeps the tables of the last
finished epoch (parameters, optimizer state, penalty columns and counters, as
``pull_table`` reads them) and, once the invocations in flight have ended, puts them back
and trains again from there. Local stores cannot lose their arrays while their fit
runs, so nothing is kept for them.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ..store.base import ModelTable, ParameterStore
from .stopping import StopRule


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

    def save(self, n_iter: int, rule: StopRule) -> None:
        if self.enabled:
            tables = {key: self.store.pull_table(key) for key in self.keys}
            self.saved = SavedEpoch(n_iter, tables, copy.deepcopy(rule))

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
