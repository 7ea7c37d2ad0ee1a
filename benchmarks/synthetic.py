"""A large sparse classification problem like hashed click logs: power-law features."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def make_hashed_classification(
    n_samples: int = 1_000_000,
    n_features: int = 2**20,
    nnz_per_row: int = 40,
    random_state: int = 0,
):
    """CSR X with ``nnz_per_row`` binary features a row drawn from a Zipf-like law over
    ``n_features`` hashed ids, and labels from a sparse logistic model of them."""
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
