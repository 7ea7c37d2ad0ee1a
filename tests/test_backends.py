"""One engine contract, run on every executor with every store that executor can reach.

Each combination must train to quality, survive a worker that raises (relaunched), fail
clearly when the failure repeats, and leave nothing behind in its store. Workers outside
this process must also be replaced when killed or over their memory limit.
"""

import pytest
from test_driver import FailingExecutor
from worker_faults import allocate_too_much, die, explode, overspend

from sklearn_cirrus import ServerlessSGDClassifier, WorkerError
from sklearn_cirrus.executors import ProcessExecutor, SequentialExecutor, ThreadExecutor

# long, with real servers and clusters: .ci/run's second step (-m backends)
pytestmark = pytest.mark.backends

COMBINATIONS = [
    (executor, store)
    for executor in ("sequential", "threads", "processes", "dask", "lithops", "ray")
    for store in ("default", "redis")
] + [("ray", "ray")]


@pytest.fixture
def executor(request):
    kind = request.param
    if kind == "dask":
        from sklearn_cirrus.executors import DaskExecutor

        yield DaskExecutor(request.getfixturevalue("dask_client"))
    elif kind in ("lithops", "ray"):
        yield request.getfixturevalue(f"{kind}_executor")
    else:
        made = {
            "sequential": SequentialExecutor,
            "threads": ThreadExecutor,
            "processes": ProcessExecutor,
        }[kind]()
        yield made
        made.shutdown()


@pytest.fixture
def store(request):
    return {"default": None, "ray": "ray"}.get(request.param) or request.getfixturevalue(
        "redis_url"
    )


def left_in_redis(store):
    if store is None or not store.startswith("redis"):
        return []
    import redis

    return redis.Redis.from_url(store).keys("cirrus:*")


every_combination = pytest.mark.parametrize(
    "executor, store", COMBINATIONS, indirect=True, ids=[f"{e}-{s}" for e, s in COMBINATIONS]
)


@every_combination
def test_trains_and_leaves_nothing_behind(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    clf = ServerlessSGDClassifier(executor=executor, store=store, max_iter=5, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.85
    assert left_in_redis(store) == []


@every_combination
def test_a_raising_worker_is_relaunched(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    flaky = FailingExecutor(executor, explode, times=1)
    clf = ServerlessSGDClassifier(executor=flaky, store=store, max_iter=5, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.85
    # the injected failure was relaunched (a loaded machine may add others: they are told)
    reasons = clf.fit_report_["failure_reasons"]
    assert clf.fit_report_["failures"] == len(reasons) >= 1
    assert "exploded on purpose" in reasons[0], reasons


@every_combination
def test_a_repeated_failure_is_raised_and_cleaned_up(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    broken = FailingExecutor(executor, explode, times=10**6)
    with pytest.raises(WorkerError, match="worker exploded on purpose"):
        ServerlessSGDClassifier(executor=broken, store=store, n_workers=1).fit(X, y)
    assert left_in_redis(store) == []


# where the platform enforces memory, a worker that allocates too much; elsewhere the
# worker runtime's own check must stop it
OVER_MEMORY = {
    "processes": allocate_too_much,
    "dask": overspend,
    "ray": overspend,
    "lithops": overspend,
}
KILLED_OR_OVER = [
    (executor, failure) for executor in OVER_MEMORY for failure in ("killed", "over-memory")
]


@pytest.mark.parametrize(
    "executor, failure",
    KILLED_OR_OVER,
    indirect=["executor"],
    ids=[f"{e}-{f}" for e, f in KILLED_OR_OVER],
)
def test_a_worker_killed_or_over_memory_is_replaced(
    executor, failure, request, binary_data, no_store_leak
):
    X, y = binary_data
    kind = request.node.callspec.params["executor"]
    broken = die if failure == "killed" else OVER_MEMORY[kind]
    flaky = FailingExecutor(executor, broken, times=1)
    clf = ServerlessSGDClassifier(executor=flaky, max_iter=5, random_state=0).fit(X, y)
    assert clf.fit_report_["failures"] == 1 and clf.score(X, y) > 0.85
