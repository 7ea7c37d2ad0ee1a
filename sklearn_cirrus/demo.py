"""The demo: ServerlessSGDClassifier with its defaults next to scikit-learn's SGDClassifier."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_svmlight_file, make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from .datasets import LIBSVM_DATASETS, fetch_libsvm
from .datasets._fetch import has_test_subset
from .executors import DEFAULT_EXECUTOR
from .linear_model import ServerlessSGDClassifier


def _with_int32_indices(X):
    # load_svmlight_file gives int64 indices, which scikit-learn's SGDClassifier refuses
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    return X


def _libsvm(train_path: str, test_path: str | None):
    """The LIBSVM files, or the LIBSVM page's dataset of that name; None for the test
    part when there is none (the caller splits)."""
    if not Path(train_path).exists() and train_path in LIBSVM_DATASETS:
        X, y = fetch_libsvm(train_path)
        if test_path is None and has_test_subset(train_path):
            return X, y, *fetch_libsvm(train_path, "test")
    elif not Path(train_path).exists():
        raise FileNotFoundError(
            f"--data {train_path!r}: no such file, nor the name of a LIBSVM dataset "
            f"({', '.join(LIBSVM_DATASETS)})"
        )
    else:
        X, y = load_svmlight_file(train_path)
    if test_path is None:
        return X, y, None, None
    return X, y, *load_svmlight_file(test_path, n_features=X.shape[1])


def load_data(train_path: str | None, test_path: str | None, n_samples: int, random_state: int):
    """LIBSVM data (train and test files, or a dataset's name), or a generated problem;
    split 80/20 where no test part is given."""
    if train_path is None:
        X, y = make_classification(
            n_samples=n_samples,
            n_features=50,
            n_informative=20,
            flip_y=0.05,
            random_state=random_state,
        )
        return train_test_split(X, y, test_size=0.2, random_state=random_state)
    X, y, X_test, y_test = _libsvm(train_path, test_path)
    X = _with_int32_indices(X)
    if X_test is None:
        return train_test_split(X, y, test_size=0.2, random_state=random_state)
    return X, _with_int32_indices(X_test), y, y_test


def _row(name: str, model, X_test, y_test, seconds: float) -> str:
    accuracy = accuracy_score(y_test, model.predict(X_test))
    loss = log_loss(y_test, model.predict_proba(X_test), labels=model.classes_)
    return f"{name:<34} {accuracy:>9.4f} {loss:>9.4f} {seconds:>9.2f}"


def run_demo(
    train_path=None,
    test_path=None,
    *,
    n_samples=200_000,
    executor=None,
    n_workers=2,
    random_state=0,
) -> None:
    X_train, X_test, y_train, y_test = load_data(train_path, test_path, n_samples, random_state)
    source = train_path or f"generated: make_classification(n_samples={n_samples})"
    print(
        f"data: {source}; {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
        f"{X_train.shape[1]} features"
    )
    shown = executor or f"{DEFAULT_EXECUTOR} (the default)"
    print(f"training on executor: {shown}, {n_workers} workers; progress:")
    started = time.perf_counter()
    ours = ServerlessSGDClassifier(
        executor=executor, n_workers=n_workers, verbose=1, random_state=random_state
    ).fit(X_train, y_train)
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reference = SGDClassifier(loss="log_loss", random_state=random_state).fit(X_train, y_train)
    reference_seconds = time.perf_counter() - started
    print()
    print(f"{'model':<34} {'accuracy':>9} {'log-loss':>9} {'fit (s)':>9}")
    print(_row("ServerlessSGDClassifier", ours, X_test, y_test, ours_seconds))
    print(_row("sklearn SGDClassifier(log_loss)", reference, X_test, y_test, reference_seconds))
    report = ours.fit_report_
    print(
        f"\npath: {report['path']}; {report['invocations']} invocations, "
        f"{report['failures']} failures, "
        f"{report['worker_seconds']:.2f} worker-seconds, {report['gb_seconds']:.2f} GB-s, "
        f"~${report['estimated_cost_usd']:.6f} on AWS Lambda; epochs: {ours.n_iter_}"
    )
