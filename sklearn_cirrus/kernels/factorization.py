"""Biased matrix factorization, trained by the compiled kernel one shard at a time.

A rating of user ``u`` for item ``i`` is predicted as ``mu + b_u + b_i + p_u . q_i``.
User rows live in the store under ``"users"`` as an ``(n_users, n_components + 1)``
array (factors, then bias), item rows under ``"items"`` likewise; a minibatch pulls
and pushes only the rows of the users and items it holds. The loss of a rating is
``(r - r_hat)^2 / 2`` plus ``alpha / 2`` times the squared norms of the factors and
biases it involves, the regularisation of Funk's SVD as in Surprise's ``SVD``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.batch import Batch
from . import _sgd
from .indexing import IdIndexer


@dataclass(frozen=True)
class FactorizationPlanner:
    users: IdIndexer
    items: IdIndexer

    def __call__(self, batch: Batch) -> tuple[dict[str, np.ndarray], Batch]:
        pairs = np.asarray(batch.X, dtype=np.int64)
        user_rows, local_users = self.users(pairs[:, 0])
        item_rows, local_items = self.items(pairs[:, 1])
        local = Batch(np.column_stack([local_users, local_items]), batch.y, batch.sample_weight)
        return {FactorizationKernel.USERS: user_rows, FactorizationKernel.ITEMS: item_rows}, local

    def touches(self, batch: Batch) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """How ``batch``'s ratings touch the user and item rows, for a worker that trains
        on a replica: their ids (one a rating), and no row every rating touches."""
        pairs = np.asarray(batch.X)
        nothing = np.zeros(0, dtype=np.int64)
        return {
            key: (np.ascontiguousarray(pairs[:, column], dtype=np.int32), nothing)
            for column, key in enumerate((FactorizationKernel.USERS, FactorizationKernel.ITEMS))
        }


@dataclass(frozen=True)
class FactorizationKernel:
    """Biased matrix factorization: pure and picklable.

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id spaces; ids in batches are indices into them.
    n_components : int
        Length of the factor vectors.
    alpha : float
        L2 regularisation of the factors, applied per rating.
    global_mean : float
        ``mu``, the mean training rating, held fixed.
    alpha_bias : float or None
        L2 regularisation of the biases; None uses ``alpha``.
    """

    n_users: int
    n_items: int
    n_components: int
    alpha: float = 0.05
    global_mean: float = 0.0
    alpha_bias: float | None = None

    # minibatches between a worker's exchanges with a replica store (Redis) by default,
    # by the fit's number of workers (more workers: 1). A user's and an item's factors
    # move together, and stale ones pull them apart: on ml-latest-small, process
    # workers, test RMSE for seeds 0-3, 2 workers: shared memory 0.8550-0.8560, k=8
    # 0.8548-0.8575, 16 0.8552-0.8579, 32 0.8547-0.8579 (mean +0.0013; +0.0018-0.0022
    # over seeds 0-7, k=64 alike: docs/benchmarks.md); seeds 0-1, 4 workers: shared
    # memory 0.8552-0.8571, k=1 0.8569-0.8573, 2 0.8570-0.8593, 4 0.8596-0.8599. One
    # worker's runs meet no other worker's changes.
    REPLICA_RUNS = {1: 64, 2: 32}
    # a replica's AdaGrad accumulators count each squared gradient once for every
    # worker while a run trains (runtime.trainers): on a shared table the others' add to
    # them meanwhile, and a row's steps shrink as they do. Every worker trains on a
    # random split of the ratings, so each adds to a row's as often. Test RMSE on
    # ml-latest-small, 2 process workers on Redis, 24 fits: shared memory's +0.0013
    # -> +0.0003
    REPLICA_SHARED_ACCUMULATORS = True
    USERS = "users"
    ITEMS = "items"
    KEYS = (USERS, ITEMS)

    def read(self, store) -> dict[str, np.ndarray]:
        """The factors as they stand in ``store``."""
        return {key: store.pull(key) for key in self.KEYS}

    def init_params(self, random_state: np.random.RandomState, init_std: float) -> dict:
        """Factors drawn from N(0, init_std), biases at 0."""
        params = {}
        for key, n_rows in ((self.USERS, self.n_users), (self.ITEMS, self.n_items)):
            rows = np.zeros((n_rows, self.n_components + 1))
            rows[:, :-1] = random_state.normal(scale=init_std, size=(n_rows, self.n_components))
            params[key] = rows
        return params

    def update_rules(self, optimizer):
        """The same rule for users and items; the penalty is in the gradient, per rating."""
        return {self.USERS: optimizer, self.ITEMS: optimizer}

    def row_planner(self) -> FactorizationPlanner:
        return FactorizationPlanner(IdIndexer(self.n_users), IdIndexer(self.n_items))

    def loss_of_zeros(self, y, sample_weight) -> None:
        """Not told: the ratings' scale sets what a diverged loss is, and a dataset's
        are not read here."""
        return None

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int:
        """Memory a worker maps or copies for the model: at most every array of every row
        (factors and bias, optimizer state), the two id indexers' scratches and a
        replica's run's count of the ratings touching each row."""
        return (self.n_users + self.n_items) * ((self.n_components + 1) * 2 * 8 + 4 + 4)

    def train_tables(self, tables, shard: Batch, batch_size: int) -> tuple[float, int]:
        """Train on the ratings of ``shard`` (``X`` holds row pairs of the two tables)."""
        users, items = tables[self.USERS], tables[self.ITEMS]
        pairs = np.asarray(shard.X)
        return _sgd.train_factorization(
            users.optimizer,
            users.params,
            users.state,
            users.meta,
            items.params,
            items.state,
            items.meta,
            np.ascontiguousarray(pairs[:, 0], dtype=np.int32),
            np.ascontiguousarray(pairs[:, 1], dtype=np.int32),
            np.asarray(shard.y, dtype=np.float64),
            np.asarray(shard.sample_weight, dtype=np.float64),
            batch_size,
            self.global_mean,
            self.alpha,
            self.alpha if self.alpha_bias is None else self.alpha_bias,
        )
