"""Optimizers the parameter store applies on every push, as Cirrus's parameter server does.

Workers send gradients, never new weights: the store owns the learning-rate schedule and
the per-coordinate optimizer state, so many workers pushing concurrently still run one
optimizer. Every function here updates numpy arrays in place and works the same on
process-local arrays and on shared-memory maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad")
LEARNING_RATES = ("constant", "optimal", "invscaling", "adaptive")

# the slots of a key's small metadata array: samples seen, step-size scale, and the two
# global clocks of lazy regularisation (see kernels/_linear_sgd.pyx)
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

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(
                f"learning_rate must be one of {LEARNING_RATES}, got {self.learning_rate!r}"
            )

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

    def step_size(self, meta: np.ndarray) -> float:
        """The step size for the next update, given a key's metadata array."""
        t = meta[T_SLOT]
        if self.learning_rate == "optimal":
            eta = 1.0 / (self.alpha * (self.optimal_init + t))
        elif self.learning_rate == "invscaling":
            eta = self.eta0 / (t + 1.0) ** self.power_t
        else:
            eta = self.eta0
        return eta * meta[ETA_SCALE_SLOT]


def new_meta(samples_seen: float = 0.0) -> np.ndarray:
    meta = np.zeros(META_SIZE)
    meta[T_SLOT] = samples_seen
    meta[ETA_SCALE_SLOT] = 1.0
    return meta


def apply_update(
    config: OptimizerConfig,
    params: np.ndarray,
    state: np.ndarray,
    meta: np.ndarray,
    grad: np.ndarray,
    rows: np.ndarray | None,
    n_samples: int,
) -> None:
    """Apply one optimizer step for ``grad`` to ``params[rows]`` (all rows if None)."""
    eta = config.step_size(meta)
    index = slice(None) if rows is None else rows
    if config.name == "sgd":
        params[index] -= eta * grad
    elif config.name == "adagrad":
        accumulated = state[index] + grad * grad
        state[index] = accumulated
        params[index] -= eta * grad / (np.sqrt(accumulated) + config.adagrad_epsilon)
    elif config.name == "momentum":
        velocity = config.momentum * state[index] + grad
        state[index] = velocity
        params[index] -= eta * velocity
    else:  # nesterov, in the form of Sutskever et al. (2013) used by most libraries
        previous = state[index].copy()  # a view when index is a slice
        velocity = config.momentum * previous - eta * grad
        state[index] = velocity
        params[index] += -config.momentum * previous + (1.0 + config.momentum) * velocity
    meta[T_SLOT] += n_samples
