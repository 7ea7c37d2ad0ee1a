"""Loss and gradient of biased matrix factorization on one minibatch of ratings.

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

from .base import Batch
from .indexing import IdIndexer

# Copies a worker holds of the parameter rows it works on: pulled, gradient, temporaries.
WORKING_COPIES = 6


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


def _sum_by_row(values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Add up ``values`` (n, d) into ``n_rows`` rows by ``rows``: a sparse product."""
    import scipy.sparse as sp  # here, not at import: a cold linear worker never needs it

    one_hot = sp.csr_matrix(
        (np.ones(rows.size), rows, np.arange(rows.size + 1)), shape=(rows.size, n_rows)
    )
    return np.asarray(one_hot.T @ values)


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

    USERS = "users"
    ITEMS = "items"

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

    def worker_model_bytes(self, batch_size: int, sparse: bool) -> int:
        rows = 2 * batch_size * (self.n_components + 1) * 8 * WORKING_COPIES
        return rows + (self.n_users + self.n_items) * 4  # + the two IdIndexer scratches

    def predict_rows(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predictions for aligned rows of user and item parameters."""
        k = self.n_components
        return (
            self.global_mean
            + users[:, k]
            + items[:, k]
            + np.einsum("ij,ij->i", users[:, :k], items[:, :k])
        )

    def loss_grad(
        self, params: dict[str, np.ndarray], batch: Batch
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Weighted sum of the losses on ``batch`` and the gradient of their mean.

        ``batch.X`` holds (user, item) positions into the pulled rows.
        """
        users, items = params[self.USERS], params[self.ITEMS]
        local_users, local_items = batch.X[:, 0], batch.X[:, 1]
        user_rows, item_rows = users[local_users], items[local_items]
        error = self.predict_rows(user_rows, item_rows) - batch.y
        weighted = batch.sample_weight * error
        k = self.n_components
        user_grad = np.empty_like(user_rows)
        user_grad[:, :k] = weighted[:, None] * item_rows[:, :k]
        user_grad[:, k] = weighted
        item_grad = np.empty_like(item_rows)
        item_grad[:, :k] = weighted[:, None] * user_rows[:, :k]
        item_grad[:, k] = weighted
        regularisation = np.full(k + 1, self.alpha)
        regularisation[k] = self.alpha if self.alpha_bias is None else self.alpha_bias
        user_grad += regularisation * user_rows
        item_grad += regularisation * item_rows
        n = batch.n_samples
        loss = 0.5 * float(np.sum(batch.sample_weight * error * error))
        return loss, {
            self.USERS: _sum_by_row(user_grad, local_users, users.shape[0]) / n,
            self.ITEMS: _sum_by_row(item_grad, local_items, items.shape[0]) / n,
        }
