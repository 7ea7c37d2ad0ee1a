"""Fits survive workers killed at random, and end the same as without the killing."""

import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.executors.chaos import KillingProcessExecutor


@pytest.fixture(scope="module")
def split():
    X, y = make_classification(n_samples=100_000, n_features=50, random_state=0)
    return X[:80_000], y[:80_000], X[80_000:], y[80_000:]


def _fit(split, executor):
    X, y, X_test, y_test = split
    clf = ServerlessSGDClassifier(
        executor=executor, n_workers=2, alpha=1e-3, max_iter=20, tol=None, random_state=0
    ).fit(X, y)
    return clf, log_loss(y_test, clf.predict_proba(X_test))


def test_a_fit_whose_workers_are_killed_at_random_ends_as_a_clean_one(split, no_store_leak):
    clean = KillingProcessExecutor(share=0.0)
    killing = KillingProcessExecutor(share=0.3, random_state=0)
    try:
        _, clean_loss = _fit(split, clean)
        clf, loss = _fit(split, killing)
    finally:
        clean.shutdown()
        killing.shutdown()
    report = clf.fit_report_
    # a real share of the invocations died, each one relaunched
    assert killing.kills >= 0.1 * report["invocations"]
    assert report["failures"] >= killing.kills - 1  # a kill may land on an idle process
    assert all("WorkerLost" in reason for reason in report["failure_reasons"])
    assert clf.n_iter_ == 20
    assert abs(loss - clean_loss) <= 0.005 * clean_loss


def test_the_share_killed_is_checked():
    with pytest.raises(ValueError, match="share"):
        KillingProcessExecutor(share=1.5)
