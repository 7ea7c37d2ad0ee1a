"""What is particular to Ray: timeouts cancel tasks, and the actor store needs Ray."""

import pytest
from test_driver import FailingExecutor
from worker_faults import hang

from sklearn_cirrus import ServerlessSGDClassifier, WorkerTimeout

# long, with real servers and clusters: .ci/run's second step (-m backends)
pytestmark = pytest.mark.backends


def test_a_hung_ray_task_times_out(ray_executor, binary_data, no_store_leak):
    X, y = binary_data
    hung = FailingExecutor(ray_executor, hang, times=10**6)
    with pytest.raises(WorkerTimeout, match="worker_timeout=1.0"):
        ServerlessSGDClassifier(executor=hung, n_workers=1, worker_timeout=1.0).fit(X, y)
