"""Generated problems of the shapes serverless training exists for: hashed click logs
and large rating sets."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def make_hashed_classification(
    n_samples: int = 1_000_000,
    n_features: int = 2**20,
    nnz_per_row: int = 40,
    random_state: int = 0,
):
    """A problem shaped like hashed click logs: sparse rows, power-law features.

    Each row has about ``nnz_per_row`` binary features (fewer where draws repeat) drawn
    with popularity ~ 1 / rank over ``n_features`` hashed ids; labels come from a
    logistic model of them with 30% of the features relevant.

    Returns
    -------
    X : csr_matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Labels 0 / 1.
    """
    rng = np.random.default_rng(random_state)
    # feature popularity ~ 1 / rank, as in hashed categorical data
    popularity = 1.0 / np.arange(1, n_features + 1)
    popularity /= popularity.sum()
    indices = rng.choice(n_features, size=n_samples * nnz_per_row, p=popularity)
    indices = rng.permutation(n_features)[indices].astype(np.int32)
    indptr = np.arange(0, n_samples * nnz_per_row + 1, nnz_per_row, dtype=np.int64)
    X = sp.csr_matrix(
        (np.ones(indices.size), indices, indptr.astype(np.int32)), shape=(n_samples, n_features)
    )
    X.sum_duplicates()
    true_coef = rng.normal(scale=0.6, size=n_features) * (rng.random(n_features) < 0.3)
    margin = X @ true_coef - 0.5
    y = (rng.random(n_samples) < 1.0 / (1.0 + np.exp(-margin))).astype(np.int64)
    return X, y


def make_ratings(
    n_ratings: int = 1_000_000,
    n_users: int = 6_100,
    n_items: int = 97_000,
    n_components: int = 10,
    random_state: int = 0,
):
    """Ratings shaped like MovieLens: power-law user activity and item popularity.

    Half-star ratings from 0.5 to 5 drawn from a rank-``n_components`` model with user
    and item biases, plus noise.

    Returns
    -------
    X : ndarray of shape (n_ratings, 2)
        (user, item) id pairs.
    y : ndarray of shape (n_ratings,)
        Ratings.
    """
    rng = np.random.default_rng(random_state)

    def power_law(n):
        weights = 1.0 / np.arange(1, n + 1) ** 0.9
        return rng.permutation(n)[rng.choice(n, size=n_ratings, p=weights / weights.sum())]

    users, items = power_law(n_users), power_law(n_items)
    user_factors = rng.normal(scale=0.4, size=(n_users, n_components))
    item_factors = rng.normal(scale=0.4, size=(n_items, n_components))
    raw = (
        3.5
        + rng.normal(scale=0.4, size=n_users)[users]
        + rng.normal(scale=0.4, size=n_items)[items]
        + np.einsum("ij,ij->i", user_factors[users], item_factors[items])
        + rng.normal(scale=0.8, size=n_ratings)
    )
    return np.column_stack([users, items]), np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
