"""scikit-learn's SGD stopping rule, evaluated by the driver once per epoch."""

from __future__ import annotations

import math

# scikit-learn's 'adaptive' schedule divides the step size by 5 down to this floor
ADAPTIVE_DECAY = 0.2
ADAPTIVE_MIN_ETA = 1e-6


class StopRule:
    """Count epochs without improvement, as ``sklearn.linear_model.SGDClassifier`` does.

    Without validation, an epoch improves when its mean training loss drops more than
    ``tol`` below the best so far; with validation, when its validation score rises
    more than ``tol`` above the best. After ``n_iter_no_change`` epochs without
    improvement, training stops, or, with the adaptive schedule, the step size is
    divided by 5 (until it is below 1e-6) and counting starts again. ``tol=None``
    never stops early.
    """

    def __init__(
        self,
        *,
        tol: float | None,
        n_iter_no_change: int,
        use_validation: bool = False,
        adaptive: bool = False,
        eta0: float = 1.0,
    ):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.use_validation = use_validation
        self.adaptive = adaptive
        self.eta = eta0
        self.best_loss = math.inf
        self.best_score = -math.inf
        self.no_improvement = 0

    def update(self, loss: float, score: float | None = None) -> str:
        """Record one epoch; return ``"continue"``, ``"decay"`` or ``"stop"``."""
        if self.use_validation:
            improved = self.tol is None or score >= self.best_score + self.tol
            self.best_score = max(self.best_score, score)
        else:
            improved = self.tol is None or loss <= self.best_loss - self.tol
            self.best_loss = min(self.best_loss, loss)
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if self.no_improvement < self.n_iter_no_change:
            return "continue"
        if self.adaptive and self.eta > ADAPTIVE_MIN_ETA:
            self.eta *= ADAPTIVE_DECAY
            self.no_improvement = 0
            return "decay"
        return "stop"
