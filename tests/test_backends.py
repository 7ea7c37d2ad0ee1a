"""One engine contract, run on every executor with every store that executor can reach.

Each combination must train to quality, survive a worker that raises (relaunched), fail
clearly when the failure repeats, and leave nothing behind in its store.
"""

import pytest
from test_driver import FailingExecutor, allocate_too_much, die, explode

from sklearn_cirrus import ServerlessSGDClassifier, WorkerError
from sklearn_cirrus.executors import ProcessExecutor, SequentialExecutor, ThreadExecutor

EXECUTORS = ["sequential", "threads", "processes", "dask"]
STORES = ["default", "redis"]


@pytest.fixture
def executor(request):
    """A fresh executor of the kind named by the test's parameter."""
    kind = request.param
    if kind == "sequential":
        made = SequentialExecutor()
    elif kind == "threads":
        made = ThreadExecutor()
    elif kind == "processes":
        made = ProcessExecutor()
    else:
        distributed = pytest.importorskip("distributed", reason="pip install sklearn-cirrus[dask]")
        client = request.getfixturevalue("client")
        from sklearn_cirrus.executors import DaskExecutor

        made = DaskExecutor(client)
        assert isinstance(client, distributed.Client)
    yield made
    if kind != "dask":
        made.shutdown()


@pytest.fixture
def store(request):
    if request.param == "default":
        return None
    return request.getfixturevalue("redis_url")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason="pip install sklearn-cirrus[dask]")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def redis_keys(url):
    import redis

    return redis.Redis.from_url(url).keys("cirrus:*")


COMBINATIONS = pytest.mark.parametrize(
    "executor, store",
    [(e, s) for e in EXECUTORS for s in STORES],
    indirect=True,
    ids=[f"{e}-{s}" for e in EXECUTORS for s in STORES],
)


@COMBINATIONS
def test_trains_and_leaves_nothing_behind(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    clf = ServerlessSGDClassifier(executor=executor, store=store, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.85
    if store is not None:
        assert redis_keys(store) == []


@COMBINATIONS
def test_a_raising_worker_is_relaunched(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    flaky = FailingExecutor(executor, explode, times=1)
    clf = ServerlessSGDClassifier(executor=flaky, store=store, random_state=0).fit(X, y)
    assert clf.fit_report_["failures"] == 1 and clf.score(X, y) > 0.85


@COMBINATIONS
def test_a_repeated_failure_is_raised_and_cleaned_up(executor, store, binary_data, no_store_leak):
    X, y = binary_data
    broken = FailingExecutor(executor, explode, times=10**6)
    with pytest.raises(WorkerError, match="worker exploded on purpose"):
        ServerlessSGDClassifier(executor=broken, store=store, n_workers=1).fit(X, y)
    if store is not None:
        assert redis_keys(store) == []


@pytest.mark.parametrize("failure", [die, allocate_too_much], ids=["killed", "over-memory"])
@pytest.mark.parametrize("store", STORES, indirect=True)
def test_a_process_worker_killed_or_over_memory_is_replaced(
    store, failure, binary_data, no_store_leak
):
    X, y = binary_data
    with ProcessExecutor() as processes:
        flaky = FailingExecutor(processes, failure, times=1)
        clf = ServerlessSGDClassifier(executor=flaky, store=store, random_state=0).fit(X, y)
    assert clf.fit_report_["failures"] == 1 and clf.score(X, y) > 0.85
