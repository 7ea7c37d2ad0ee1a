"""Pointwise losses of scikit-learn's SGD estimators, vectorised over a minibatch.

Each loss maps a prediction ``p`` and a target ``y`` (``y`` in {-1, +1} for the
classification losses) to ``(loss, dloss)``, where ``dloss`` is the derivative of the
loss with respect to ``p``. The definitions match ``sklearn.linear_model._sgd_fast``
term for term so that a model trained here is the model scikit-learn would fit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LossFunction = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


def _hinge(p, y, threshold):
    z = p * y
    active = z <= threshold
    return np.where(active, threshold - z, 0.0), np.where(active, -y, 0.0)


def hinge(p, y, epsilon):
    return _hinge(p, y, 1.0)


def perceptron(p, y, epsilon):
    return _hinge(p, y, 0.0)


def squared_hinge(p, y, epsilon):
    z = np.maximum(1.0 - p * y, 0.0)
    return z * z, -2.0 * y * z


def log_loss(p, y, epsilon):
    z = -p * y
    # log(1 + exp(z)) and its derivative, stable for large |z|
    return np.logaddexp(0.0, z), -y * _sigmoid(z)


def modified_huber(p, y, epsilon):
    z = p * y
    loss = np.where(z >= 1.0, 0.0, np.where(z >= -1.0, (1.0 - z) ** 2, -4.0 * z))
    dloss = np.where(z >= 1.0, 0.0, np.where(z >= -1.0, -2.0 * (1.0 - z) * y, -4.0 * y))
    return loss, dloss


def squared_error(p, y, epsilon):
    r = p - y
    return 0.5 * r * r, r


def huber(p, y, epsilon):
    r = p - y
    abs_r = np.abs(r)
    small = abs_r <= epsilon
    loss = np.where(small, 0.5 * r * r, epsilon * abs_r - 0.5 * epsilon * epsilon)
    return loss, np.where(small, r, epsilon * np.sign(r))


def epsilon_insensitive(p, y, epsilon):
    r = p - y
    loss = np.maximum(np.abs(r) - epsilon, 0.0)
    return loss, np.where(r > epsilon, 1.0, np.where(r < -epsilon, -1.0, 0.0))


def squared_epsilon_insensitive(p, y, epsilon):
    r = p - y
    excess = np.maximum(np.abs(r) - epsilon, 0.0)
    return excess * excess, 2.0 * np.sign(r) * excess


def _sigmoid(z):
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    exp_z = np.exp(z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out


CLASSIFICATION_LOSSES: dict[str, LossFunction] = {
    "hinge": hinge,
    "log_loss": log_loss,
    "modified_huber": modified_huber,
    "squared_hinge": squared_hinge,
    "perceptron": perceptron,
    "squared_error": squared_error,
    "huber": huber,
    "epsilon_insensitive": epsilon_insensitive,
    "squared_epsilon_insensitive": squared_epsilon_insensitive,
}

REGRESSION_LOSSES: dict[str, LossFunction] = {
    name: CLASSIFICATION_LOSSES[name]
    for name in (
        "squared_error",
        "huber",
        "epsilon_insensitive",
        "squared_epsilon_insensitive",
    )
}
