"""The update rule a key of the store follows: optimizer, schedule and penalty.

The store keeps the rule with the key's arrays, and the schedule's position and the
penalty clocks in the key's metadata, so that every worker (in place or on pulled rows)
runs one optimizer; the compiled kernels (``kernels/_sgd.pyx``) apply it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad")
LEARNING_RATES = ("constant", "optimal", "invscaling", "adaptive")

# the slots of a key's small metadata array: samples seen, step-size scale, and the two
# global clocks of lazy regularisation (see kernels/_sgd.pyx)
T_SLOT, ETA_SCALE_SLOT, LOG_DECAY_SLOT, PENALTY_STEPS_SLOT = 0, 1, 2, 3
META_SIZE = 4
META_NAMES = ("t", "eta_scale", "log_decay", "penalty_steps")


@dataclass(frozen=True)
class OptimizerConfig:
    """How the store turns a pushed gradient into an update.

    Parameters
    ----------
    name : {"sgd", "momentum", "nesterov", "adagrad"}
        ``adagrad`` keeps a per-coordinate sum of squared gradients; ``momentum`` and
        ``nesterov`` keep a per-coordinate velocity.
    eta0 : float
        Base step size.
    learning_rate : {"constant", "optimal", "invscaling", "adaptive"}
        scikit-learn's schedules with ``t`` the number of samples pushed so far:
        ``eta0``; ``1 / (alpha * (optimal_init + t))``; ``eta0 / (t + 1) ** power_t``;
        ``eta0`` divided by 5 whenever the driver sees no progress.
    l2, l1 : float
        The penalty ``l2 / 2 * ||w||^2 + l1 * |w|_1`` of the rows below
        ``penalised_rows``, applied lazily by the compiled kernels: each such row keeps a
        clock (and, for L1 with the SGD family, the penalty applied so far) in the
        store's auxiliary columns.
    penalised_rows : int
        Rows ``0 .. penalised_rows - 1`` are penalised (a linear model's features, not
        its intercept row).
    step_scale : float
        Multiplies every step size: the units of the weights. AdaGrad moves a weight by
        at most about ``eta`` a step whatever the gradient's size, so a regressor whose
        weights are in the target's units scales its steps by the target's size.
    accumulator_scale : float
        AdaGrad adds each squared gradient this many times to the accumulator its steps
        read. 1 but for a worker training on a replica, whose run stands in for the
        squared gradients the other workers add meanwhile (``runtime.trainers``).
    """

    name: str = "adagrad"
    eta0: float = 0.1
    learning_rate: str = "constant"
    power_t: float = 0.5
    alpha: float = 1e-4
    optimal_init: float = 1.0
    momentum: float = 0.9
    adagrad_epsilon: float = 1e-8
    l2: float = 0.0
    l1: float = 0.0
    penalised_rows: int = 0
    step_scale: float = 1.0
    accumulator_scale: float = 1.0

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(
                f"learning_rate must be one of {LEARNING_RATES}, got {self.learning_rate!r}"
            )

    @property
    def codes(self) -> tuple[int, int]:
        """The optimizer's and the schedule's places in OPTIMIZERS and LEARNING_RATES: the
        compiled rule's (``_owed.pxd``) enums."""
        return OPTIMIZERS.index(self.name), LEARNING_RATES.index(self.learning_rate)

    @property
    def has_state(self) -> bool:
        return self.name != "sgd"

    @property
    def penalised(self) -> bool:
        return self.penalised_rows > 0 and (self.l1 > 0 or self.l2 > 0)

    def aux_width(self, n_cols: int) -> int:
        """Auxiliary columns a row needs: its clock and, with L1, the penalty applied per
        column (and, for adagrad, the penalty each column could have received)."""
        if not self.penalised:
            return 0
        if self.l1 == 0:
            return 1
        return 1 + (2 * n_cols if self.name == "adagrad" else n_cols)


def new_meta(samples_seen: float = 0.0) -> np.ndarray:
    meta = np.zeros(META_SIZE)
    meta[T_SLOT] = samples_seen
    meta[ETA_SCALE_SLOT] = 1.0
    return meta
