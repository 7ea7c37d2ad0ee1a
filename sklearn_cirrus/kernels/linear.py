"""Loss and gradient of a regularised linear model on one minibatch.

The parameters of a model with ``n_features`` inputs and ``n_outputs`` outputs live in
the store under one key, ``"model"``, as an ``(n_features + 1, n_outputs)`` array: row
``j`` holds the weights of feature ``j`` for every output and the last row holds the
intercepts. A sparse minibatch touches only a few rows, so a worker pulls and pushes
just those (:class:`RowIndexer`), exactly as Cirrus's workers do.

The penalty gradient is applied to the rows a minibatch touches only, the usual lazy
regularisation of sparse SGD: a feature that never occurs is never decayed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .indexing import IdIndexer
from .losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

# scikit-learn clips dloss to this magnitude to avoid overflow (``MAX_DLOSS``)
MAX_DLOSS = 1e12
# Copies a worker holds of the parameter rows it works on: pulled, gradient, temporaries.
WORKING_COPIES = 6


@dataclass(frozen=True)
class Batch:
    """A minibatch: features, encoded targets and per-sample weights."""

    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    sample_weight: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


@dataclass(frozen=True)
class LinearKernel:
    """A linear model's loss, gradient and initial parameters; pure and picklable.

    Parameters
    ----------
    loss : str
        A key of :data:`CLASSIFICATION_LOSSES` (``classification=True``) or
        :data:`REGRESSION_LOSSES`.
    n_features : int
        Number of input features.
    n_outputs : int, default=1
        1 for regression and binary classification, the number of classes for
        one-vs-rest multiclass classification.
    classification : bool, default=True
        Whether targets are class indices (encoded to {-1, +1} per output) or reals.
    penalty, alpha, l1_ratio, epsilon, fit_intercept
        As in :class:`sklearn.linear_model.SGDClassifier`.
    positive_weight, negative_weight : tuple of float, default=None
        Class weights of the positive and negative examples of each output; a sample's
        weight is its sample weight times the one that applies.
    """

    loss: str
    n_features: int
    n_outputs: int = 1
    classification: bool = True
    penalty: str | None = "l2"
    alpha: float = 1e-4
    l1_ratio: float = 0.15
    epsilon: float = 0.1
    fit_intercept: bool = True
    positive_weight: tuple[float, ...] | None = None
    negative_weight: tuple[float, ...] | None = None

    KEY = "model"

    @property
    def n_rows(self) -> int:
        return self.n_features + 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_outputs)

    def init_params(
        self, coef: np.ndarray | None = None, intercept: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Stack ``coef`` (n_outputs, n_features) and ``intercept`` into the store layout."""
        params = np.zeros(self.shape)
        if coef is not None:
            params[:-1] = np.asarray(coef, dtype=np.float64).reshape(self.n_outputs, -1).T
        if intercept is not None:
            params[-1] = intercept
        return {self.KEY: params}

    def split_params(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(coef, intercept)`` in scikit-learn's shapes from the store layout."""
        model = params[self.KEY]
        return np.ascontiguousarray(model[:-1].T), model[-1].copy()

    def row_planner(self) -> RowPlanner:
        """A worker's per-invocation helper that says which rows each minibatch needs."""
        return RowPlanner(self.KEY, RowIndexer(self.n_features))

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int:
        """Memory a worker needs for the model rows one minibatch works on."""
        if not sparse:
            return self.n_rows * self.n_outputs * 8 * WORKING_COPIES
        rows = min(self.n_rows, batch_size * 64)
        return (
            rows * self.n_outputs * 8 * WORKING_COPIES + RowIndexer(self.n_features).scratch_bytes()
        )

    def _loss_function(self):
        losses = CLASSIFICATION_LOSSES if self.classification else REGRESSION_LOSSES
        return losses[self.loss]

    def _targets_and_weights(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Encode targets per output and combine sample and class weights."""
        sample_weight = batch.sample_weight[:, None]
        if not self.classification:
            return batch.y.astype(np.float64)[:, None], np.broadcast_to(
                sample_weight, (batch.n_samples, 1)
            )
        if self.n_outputs == 1:
            is_positive = (batch.y == 1)[:, None]
        else:
            is_positive = batch.y[:, None] == np.arange(self.n_outputs)[None, :]
        targets = np.where(is_positive, 1.0, -1.0)
        positive = np.ones(self.n_outputs) if self.positive_weight is None else self.positive_weight
        negative = np.ones(self.n_outputs) if self.negative_weight is None else self.negative_weight
        weights = sample_weight * np.where(is_positive, positive, negative)
        return targets, weights

    def decision_function(self, params: dict[str, np.ndarray], X) -> np.ndarray:
        """Raw predictions ``X @ coef.T + intercept`` for rows aligned with ``X``'s columns."""
        model = params[self.KEY]
        return np.asarray(X @ model[:-1]) + model[-1]

    def loss_grad(
        self, params: dict[str, np.ndarray], batch: Batch
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Weighted sum of the losses on ``batch`` and the gradient of their mean.

        ``params["model"]`` holds the rows of the columns of ``batch.X`` followed by the
        intercept row (see :class:`RowIndexer`); the gradient has the same shape and
        includes the penalty of those rows.
        """
        model = params[self.KEY]
        targets, weights = self._targets_and_weights(batch)
        predictions = self.decision_function(params, batch.X)
        losses, dloss = self._loss_function()(predictions, targets, self.epsilon)
        scaled = weights * np.clip(dloss, -MAX_DLOSS, MAX_DLOSS) / batch.n_samples
        grad = np.empty_like(model)
        grad[:-1] = np.asarray(batch.X.T @ scaled)
        grad[-1] = scaled.sum(axis=0) if self.fit_intercept else 0.0
        grad[:-1] += self.penalty_gradient(model[:-1])
        return float(np.sum(weights * losses)), {self.KEY: grad}

    def penalty_gradient(self, coef_rows: np.ndarray) -> np.ndarray:
        """(Sub)gradient of ``alpha * ((1 - l1_ratio) / 2 * ||w||^2 + l1_ratio * |w|)``."""
        if self.penalty is None or self.alpha == 0:
            return np.zeros_like(coef_rows)
        l1_ratio = {"l2": 0.0, "l1": 1.0}.get(self.penalty, self.l1_ratio)
        return self.alpha * ((1.0 - l1_ratio) * coef_rows + l1_ratio * np.sign(coef_rows))


class RowIndexer:
    """Finds the store rows a minibatch touches and renumbers its columns to match.

    For CSR input the rows are the distinct column indices (see :class:`IdIndexer`)
    followed by the intercept row ``n_features``, and the returned matrix has one
    column per distinct index. Dense input touches every row.
    """

    def __init__(self, n_features: int):
        self.n_features = n_features
        self._ids = IdIndexer(n_features)

    def scratch_bytes(self) -> int:
        return self._ids.scratch_bytes()

    def __call__(self, X) -> tuple[np.ndarray, np.ndarray | sp.csr_matrix]:
        if not sp.issparse(X):
            return np.arange(self.n_features + 1), X
        columns, positions = self._ids(X.indices)
        compact = sp.csr_matrix((X.data, positions, X.indptr), shape=(X.shape[0], columns.size))
        return np.append(columns, self.n_features), compact


@dataclass(frozen=True)
class RowPlanner:
    """Maps a minibatch to the store rows it needs and the batch renumbered to match."""

    key: str
    indexer: RowIndexer

    def __call__(self, batch: Batch) -> tuple[dict[str, np.ndarray], Batch]:
        rows, X = self.indexer(batch.X)
        return {self.key: rows}, Batch(X, batch.y, batch.sample_weight)
