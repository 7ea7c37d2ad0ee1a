"""The Ray executor, on a local Ray started on loopback with two CPUs."""

from pathlib import Path

import pytest
from test_driver import FailingExecutor, explode, hang

from sklearn_cirrus import ServerlessSGDClassifier, WorkerError, WorkerTimeout

pytest.importorskip("ray", reason="pip install sklearn-cirrus[ray]")


@pytest.fixture(scope="module")
def ray_executor():
    from sklearn_cirrus.executors import RayExecutor

    # loopback only; Ray's workers import the failure helpers from this folder
    executor = RayExecutor(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}},
    )
    yield executor
    executor.shutdown()


def test_trains_as_ray_tasks(ray_executor, binary_data, no_store_leak):
    X, y = binary_data
    clf = ServerlessSGDClassifier(executor=ray_executor, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.85 and clf.fit_report_["invocations"] >= 2 * clf.n_iter_


def test_failures_and_timeouts_on_ray(ray_executor, binary_data, no_store_leak):
    X, y = binary_data
    flaky = FailingExecutor(ray_executor, explode, times=1)
    assert ServerlessSGDClassifier(executor=flaky, random_state=0).fit(X, y).score(X, y) > 0.85
    broken = FailingExecutor(ray_executor, explode, times=10**6)
    with pytest.raises(WorkerError, match="worker exploded on purpose"):
        ServerlessSGDClassifier(executor=broken, n_workers=1).fit(X, y)
    hung = FailingExecutor(ray_executor, hang, times=10**6)
    with pytest.raises(WorkerTimeout, match="worker_timeout=1.0"):
        ServerlessSGDClassifier(executor=hung, n_workers=1, worker_timeout=1.0).fit(X, y)
