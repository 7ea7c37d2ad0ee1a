"""The generated problem the speed benchmarks share: hashed click logs, split and described."""

from __future__ import annotations

from sklearn_cirrus.datasets import make_hashed_classification


def hashed_split(n_train: int):
    """``(X_train, y_train, X_test, y_test)`` of ``make_hashed_classification``, with a
    tenth as many test rows, after printing the problem's shape."""
    X, y = make_hashed_classification(n_train + n_train // 10)
    print(
        f"data: {n_train} train rows, {X.shape[0] - n_train} test rows, {X.shape[1]} "
        f"features, {X.nnz / X.shape[0]:.1f} non-zeros a row\n"
    )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
