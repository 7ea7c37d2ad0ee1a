"""What a fit decides at the end of an epoch from its clock and its bill: whether the
next epoch would pass the user's deadline or budget, and (scale-in) how many workers
the next epoch deserves."""

from __future__ import annotations

import time
import warnings

from ..exceptions import ResourceLimitWarning

# Scale-in (MLLess): once an epoch lowers the mean training loss by less than this share
# of it, the next epochs run on half the workers (never fewer than one). Measured on the
# hashed click problem (benchmarks/bench_scale_in.py, docs/benchmarks.md): the first
# epochs gain 3-10% each, and from the epoch where the gain falls under 1% the test
# log-loss moves by less than 0.001 in all, whatever the number of workers.
SCALE_IN_GAIN = 0.01


class Limits:
    """A fit's deadline (seconds from its start) and budget (``fit_report_``'s estimated
    dollars), checked once an epoch: a fit stops before an epoch that, taking as long
    and costing as much as the last one, would pass either. An epoch is the unit: the
    first one always runs."""

    def __init__(self, deadline_seconds: float | None, budget_usd: float | None, started: float):
        self.deadline_seconds = deadline_seconds
        self.budget_usd = budget_usd
        self.started = started  # time.perf_counter() at the fit's start
        self.last = (started, 0.0)  # clock and cost at the end of the last epoch

    @property
    def any(self) -> bool:
        return self.deadline_seconds is not None or self.budget_usd is not None

    def reached(self, cost_usd: float) -> str | None:
        """``"deadline"`` or ``"budget"`` when the next epoch would pass it, else None."""
        now = time.perf_counter()
        (then, spent), self.last = self.last, (now, cost_usd)
        elapsed = now - self.started
        if self.deadline_seconds is not None and elapsed + (now - then) > self.deadline_seconds:
            return "deadline"
        if self.budget_usd is not None and cost_usd + (cost_usd - spent) > self.budget_usd:
            return "budget"
        return None


def warn_limit(reason: str, n_iter: int, limits: Limits) -> None:
    """The warning a fit that stopped at its deadline or budget gives, as scikit-learn
    gives a ConvergenceWarning at max_iter."""
    what = (
        f"deadline of {limits.deadline_seconds:g} s"
        if reason == "deadline"
        else f"budget of ${limits.budget_usd:g}"
    )
    warnings.warn(
        f"Training stopped after epoch {n_iter} so as not to pass its {what}: the model is "
        "the last epoch's and may not have converged (fit_report_['stopped_by'] says "
        "why). Raise the limit or lower max_iter.",
        ResourceLimitWarning,
        stacklevel=2,
    )


def scaled_in(n_workers: int, loss_curve: list[float]) -> int:
    """The workers for the next epoch: half as many once the last epoch's gain in mean
    training loss fell under ``SCALE_IN_GAIN`` of the loss before it."""
    if n_workers <= 1 or len(loss_curve) < 2:
        return n_workers
    before, after = loss_curve[-2], loss_curve[-1]
    if before - after < SCALE_IN_GAIN * abs(before):
        return max(1, n_workers // 2)
    return n_workers
