"""A regularised linear model, trained by the compiled kernel one shard at a time.

The parameters of a model with ``n_features`` inputs and ``n_outputs`` outputs live in
the store under one key, ``"model"``, as an ``(n_features + 1, n_outputs)`` array: row
``j`` holds the weights of feature ``j`` for every output and the last row holds the
intercepts. A sparse minibatch touches only a few rows: in place, the compiled kernel
reads and writes just those; against a remote store, a worker pulls and pushes just
those (:class:`RowIndexer`), as Cirrus's workers do. The penalty is exact and lazy
(``_sgd.pyx``): the model minimises scikit-learn's objective whatever the
feature frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.batch import Batch, SparseRows
from . import _sgd
from .indexing import IdIndexer

LOSSES = _sgd.LOSSES
REGRESSION_LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
CLASSIFICATION_LOSSES = LOSSES
# penalty name -> its L1 share, for the fixed ones
_L1_SHARE = {"l2": 0.0, "l1": 1.0}


def loss_values(loss: str, p: np.ndarray, y: np.ndarray, epsilon: float = 0.1):
    """``(loss, dloss)`` of the compiled kernel's ``loss`` at predictions ``p``, targets ``y``."""
    p, y = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return _sgd.loss_values(
        loss, np.ascontiguousarray(p.ravel()), np.ascontiguousarray(y.ravel()), epsilon
    )


@dataclass(frozen=True)
class LinearKernel:
    """A linear model's initial parameters, update rule and compiled training loop.

    Parameters
    ----------
    loss : str
        One of :data:`LOSSES` (regression uses :data:`REGRESSION_LOSSES`).
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
    average : int, default=0
        Averaged SGD when positive: every step from the one that brings the samples
        seen to ``average`` on is averaged, in a second key, ``"average"``: per row the
        sum of its values over those steps and the step up to which the sum is
        complete, then a last row holding the counts of averaged and of all steps
        (``_sgd.pyx``).
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
    average: int = 0

    KEY = "model"
    # a replica's run damps its changes of the weights most samples touch, which every
    # worker changes at once (``runtime.trainers.SHARED_SPREAD_PER_WORKER``)
    REPLICA_DAMPED_KEYS = (KEY,)
    AVERAGE = "average"

    @property
    def KEYS(self) -> tuple[str, ...]:  # noqa: N802 (the kernel protocol's name)
        return (self.KEY, self.AVERAGE) if self.average else (self.KEY,)

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
        if not self.average:
            return {self.KEY: params}
        # no step averaged yet: empty sums, and the count of averaged steps 0
        return {self.KEY: params, self.AVERAGE: np.zeros((self.n_rows + 1, self.n_outputs + 1))}

    def resume_params(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The store layout that continues a fit whose :meth:`read` gave ``params``."""
        if not self.average:
            return {self.KEY: params[self.KEY]}
        averaged, steps = params["average_steps"][0]
        table = np.zeros((self.n_rows + 1, self.n_outputs + 1))
        table[:-1, :-1] = params[self.AVERAGE] * averaged
        table[:-1, -1] = steps  # every row up to date
        table[-1, :2] = averaged, steps
        return {self.KEY: params[self.KEY], self.AVERAGE: table}

    def read(self, store) -> dict[str, np.ndarray]:
        """The model as it stands in ``store``, every row brought up to date, and with
        ``average``, the averaged model (``"average"``) and the counts of averaged and of
        all steps (``"average_steps"``); read from copies, the store unchanged."""
        if not self.average:
            return {self.KEY: store.pull(self.KEY)}
        model, sums = store.pull_table(self.KEY), store.pull_table(self.AVERAGE)
        _sgd.bring_average_up_to_date(
            model.optimizer, model.params, model.state, model.aux, model.meta, sums.params
        )
        averaged_steps, steps = sums.params[-1, :2]
        averaged = (
            sums.params[:-1, :-1] / averaged_steps if averaged_steps > 0 else model.params.copy()
        )
        return {
            self.KEY: np.array(model.params),
            self.AVERAGE: averaged,
            "average_steps": np.array([[averaged_steps, steps]]),
        }

    def split_params(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(coef, intercept)`` in scikit-learn's shapes from the store layout:
        the averaged model's with ``average``, as scikit-learn's ``coef_`` are."""
        model = params.get(self.AVERAGE, params[self.KEY])
        return np.ascontiguousarray(model[:-1].T), model[-1].copy()

    def update_rules(self, optimizer):
        """``optimizer`` with this model's penalty on its feature rows (not the intercept)."""
        l1_share = 0.0
        if self.penalty is not None:
            l1_share = _L1_SHARE.get(self.penalty, self.l1_ratio)
        alpha = 0.0 if self.penalty is None else self.alpha
        rule = replace(
            optimizer,
            l2=alpha * (1.0 - l1_share),
            l1=alpha * l1_share,
            penalised_rows=self.n_features,
        )
        # the average's sums follow no rule of their own: the kernel writes them
        return {self.KEY: rule, self.AVERAGE: replace(optimizer, name="sgd", l2=0.0, l1=0.0)}

    def row_planner(self) -> RowPlanner:
        """A worker's per-invocation helper that says which rows each minibatch needs."""
        return RowPlanner(
            self.KEY, RowIndexer(self.n_features), self.AVERAGE if self.average else None
        )

    def loss_of_zeros(self, y: np.ndarray | None, sample_weight: np.ndarray | None) -> float | None:
        """The mean loss per sample of a model of zeros on targets ``y`` (None: a
        dataset's, not read here), in the units of :meth:`train_tables`' sums: what a
        training loss far above means that training diverged. Class weights count at
        their largest, so that this bounds the loss of zeros from above."""
        weight = 1.0 if sample_weight is None else float(np.mean(sample_weight))
        if self.classification:  # every loss here is even at 0: targets +1 and -1 alike
            classes = max(max(self.positive_weight or (1.0,)), max(self.negative_weight or (1.0,)))
            zero = float(loss_values(self.loss, 0.0, 1.0, self.epsilon)[0][0])
            return self.n_outputs * zero * weight * classes
        if y is None:
            return None
        losses = loss_values(self.loss, 0.0, y, self.epsilon)[0]
        return float(np.average(losses, weights=sample_weight))

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int:
        """Memory a worker maps or copies for the model: at most every array (params,
        optimizer state, penalty columns) of every row, and a replica's run's count of
        the samples touching each row (``RowPlanner.touches``)."""
        average_bytes = (self.n_rows + 1) * (self.n_outputs + 1) * 8 if self.average else 0
        return self.n_rows * ((3 * self.n_outputs + 1) * 8 + 4) + average_bytes

    def train_tables(self, tables, shard: Batch, batch_size: int) -> tuple[float, int]:
        """Train on ``shard``, ``batch_size`` rows a step, updating the table in place.

        ``tables["model"]`` holds the model rows the columns of ``shard.X`` index,
        followed by the intercept row. Returns the sum of weighted losses and the number
        of steps.
        """
        table = tables[self.KEY]
        y = np.asarray(shard.y, dtype=np.float64)
        weights = np.asarray(shard.sample_weight, dtype=np.float64)
        average = tables[self.AVERAGE].params if self.average else np.empty((0, 0))
        arrays = (table.params, table.state, table.aux, table.meta, average)
        if isinstance(shard.X, np.ndarray):
            X = np.ascontiguousarray(shard.X, dtype=np.float64)
            return _sgd.train_dense(self, table.optimizer, *arrays, X, y, weights, batch_size)
        X = shard.X
        return _sgd.train_sparse(
            self,
            table.optimizer,
            *arrays,
            np.asarray(X.data, dtype=np.float64),
            np.asarray(X.indices, dtype=np.int32),
            np.asarray(X.indptr, dtype=np.int64),
            y,
            weights,
            batch_size,
        )

    def scores(self, params: dict[str, np.ndarray]) -> ShardScores:
        """The fitted model as a function of a shard (of the averaged model, with
        ``average``)."""
        return ShardScores(params.get(self.AVERAGE, params[self.KEY]))

    def decision_function(self, params: dict[str, np.ndarray], X) -> np.ndarray:
        """Raw predictions ``X @ coef.T + intercept`` for rows aligned with ``X``'s columns."""
        return self.scores(params).of(X)


@dataclass(frozen=True)
class ShardScores:
    """``X @ weights + intercept``: predictions, in the driver or by workers on shards."""

    model: np.ndarray  # (n_features + 1, n_outputs): the weights, then the intercepts

    @classmethod
    def from_coef(cls, coef, intercept) -> ShardScores:
        coef = coef.toarray() if hasattr(coef, "toarray") else coef
        return cls(np.vstack([np.atleast_2d(coef).T, np.atleast_1d(intercept)]))

    def of(self, X) -> np.ndarray:
        X = X.tocsr() if isinstance(X, SparseRows) else X
        return np.asarray(X @ self.model[:-1]) + self.model[-1]

    def __call__(self, batch: Batch) -> np.ndarray:
        return self.of(batch.X)


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

    def __call__(self, X) -> tuple[np.ndarray, np.ndarray | SparseRows]:
        if isinstance(X, np.ndarray):
            return np.arange(self.n_features + 1), X
        columns, positions = self._ids(X.indices)
        compact = SparseRows(X.data, positions, X.indptr, (X.shape[0], columns.size))
        return np.append(columns, self.n_features), compact


@dataclass(frozen=True)
class RowPlanner:
    """Maps a minibatch to the store rows it needs and the batch renumbered to match.

    The average key, when there is one, needs the same rows and its count row.
    """

    key: str
    indexer: RowIndexer
    average_key: str | None = None

    def __call__(self, batch: Batch) -> tuple[dict[str, np.ndarray], Batch]:
        rows, X = self.indexer(batch.X)
        return self._needed(rows), Batch(X, batch.y, batch.sample_weight)

    def touches(self, batch: Batch) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """How ``batch``'s samples touch the rows of each key, for a worker that trains
        on a replica of the whole model: the feature ids of their stored values (one a
        touch), and the rows every sample touches (the intercept; with dense input,
        every row)."""
        n_features = self.indexer.n_features
        if isinstance(batch.X, np.ndarray):
            ids, every_sample = np.zeros(0, dtype=np.int32), np.arange(n_features + 1)
        else:
            ids = np.ascontiguousarray(batch.X.indices, dtype=np.int32)
            every_sample = np.array([n_features])
        touches = {self.key: (ids, every_sample)}
        if self.average_key is not None:  # (and the count row)
            touches[self.average_key] = (ids, np.append(every_sample, n_features + 1))
        return touches

    def _needed(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        needed = {self.key: rows}
        if self.average_key is not None:
            needed[self.average_key] = np.append(rows, self.indexer.n_features + 1)
        return needed
