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


def test_a_fits_store_actor_serves_the_next_fit_emptied(ray_executor):
    # a new actor's process takes a tenth of a second or more to start: an ended fit's
    # actor, emptied, is the next one's; one is kept at most
    import time

    import numpy as np
    import ray

    from sklearn_cirrus.model_table.optimizers import OptimizerConfig
    from sklearn_cirrus.store.ray_actor import RayActorStore

    first = RayActorStore()
    first.create("w", np.ones((3, 1)), OptimizerConfig())
    first.incr("steps", 2.0)
    first.delete()
    second = RayActorStore()
    assert second._actor._actor_id == first._actor._actor_id
    assert second.get("steps") == 0.0
    with pytest.raises(KeyError, match="no parameters named 'w'"):
        second.pull("w")
    third = RayActorStore()  # (the kept one is in use)
    assert third._actor._actor_id != second._actor._actor_id
    second.delete()
    third.delete()  # one is kept already: this one ends
    with pytest.raises(ray.exceptions.RayActorError):
        for _ in range(100):  # (the kill goes through Ray's control store: not at once)
            ray.get(third._actor.reset.remote())
            time.sleep(0.1)
    fourth = RayActorStore()
    assert fourth._actor._actor_id == second._actor._actor_id
    fourth.delete()
