"""Shared fixtures: the real datasets beside the checkout, and a leak check for stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def dataset_path(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{name} not found in {DATASETS} (the project's shared datasets folder)")
    return path


@pytest.fixture(scope="session")
def a9a():
    """(X_train, y_train, X_test, y_test) of LIBSVM a9a, labels 0/1, CSR float64."""
    X, y = load_svmlight_file(str(dataset_path("a9a.libsvm.gz")), n_features=123)
    X_test, y_test = load_svmlight_file(str(dataset_path("a9a_t.libsvm.gz")), n_features=123)
    return X, (y > 0).astype(int), X_test, (y_test > 0).astype(int)


@pytest.fixture(scope="session")
def a9a_small(a9a):
    """The first 4,000 rows of a9a's training set: quick yet real."""
    X, y, X_test, y_test = a9a
    return X[:4000], y[:4000], X_test, y_test


@pytest.fixture
def no_store_leak():
    """Fail a test that leaves shared-memory namespaces behind."""
    shm = Path("/dev/shm")

    def namespaces():
        return set(shm.glob("sklearn-cirrus-*")) if shm.is_dir() else set()

    before = namespaces()
    yield
    assert namespaces() - before == set(), "a fit left its store namespace behind"


@pytest.fixture
def rng():
    return np.random.RandomState(0)
