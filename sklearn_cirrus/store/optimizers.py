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

# the slots of a key's small metadata array
T_SLOT, ETA_SCALE_SLOT = 0, 1
META_SIZE = 2


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
    """

    name: str = "adagrad"
    eta0: float = 0.1
    learning_rate: str = "constant"
    power_t: float = 0.5
    alpha: float = 1e-4
    optimal_init: float = 1.0
    momentum: float = 0.9
    adagrad_epsilon: float = 1e-8

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


def new_meta() -> np.ndarray:
    meta = np.zeros(META_SIZE)
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
