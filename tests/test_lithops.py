"""The Lithops executor, on Lithops' localhost backend (offline, local processes)."""

import sys

import numpy as np
import pytest
from test_driver import FailingExecutor, explode

from sklearn_cirrus import ServerlessSGDClassifier, WorkerError

pytest.importorskip("lithops", reason="pip install sklearn-cirrus[lithops]")

# Lithops' localhost backend must run this interpreter, not whichever python is on PATH
LOCALHOST = {
    "lithops": {"backend": "localhost", "storage": "localhost", "log_level": None},
    "localhost": {"runtime": sys.executable, "worker_processes": 2, "version": 1},
}


@pytest.fixture
def lithops_executor():
    from sklearn_cirrus.executors import LithopsExecutor

    executor = LithopsExecutor(LOCALHOST)
    yield executor
    executor.shutdown()


def test_trains_as_lithops_function_calls(lithops_executor, binary_data, no_store_leak):
    X, y = binary_data
    clf = ServerlessSGDClassifier(executor=lithops_executor, max_iter=3, tol=None, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.85 and clf.n_iter_ == 3
    assert clf.fit_report_["invocations"] >= 6


def test_lithops_with_redis_store(lithops_executor, binary_data, redis_url):
    import redis

    X, y = binary_data
    clf = ServerlessSGDClassifier(
        executor=lithops_executor, store=redis_url, max_iter=2, tol=None, random_state=0
    ).fit(X, y)
    assert clf.score(X, y) > 0.85
    assert redis.Redis.from_url(redis_url).keys("cirrus:*") == []


def test_failing_function_is_relaunched_then_raised(lithops_executor, binary_data):
    X, y = binary_data
    flaky = FailingExecutor(lithops_executor, explode, times=1)
    clf = ServerlessSGDClassifier(executor=flaky, max_iter=2, tol=None, random_state=0)
    assert clf.fit(X, y).fit_report_["failures"] == 1
    broken = FailingExecutor(lithops_executor, explode, times=10**6)
    with pytest.raises(WorkerError, match="worker exploded on purpose"):
        ServerlessSGDClassifier(executor=broken, n_workers=1).fit(X, y)
    assert np.isfinite(clf.coef_).all()
