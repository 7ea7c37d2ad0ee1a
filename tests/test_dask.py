"""The Dask executor, against a real distributed.LocalCluster of processes on loopback."""

import numpy as np
import pytest
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessMatrixFactorization, ServerlessSGDClassifier

# long, with real servers and clusters: .ci/run's second step (-m backends)
pytestmark = pytest.mark.backends


@pytest.fixture
def client(dask_client):
    return dask_client


def test_a9a_on_dask_workers(a9a, client, no_store_leak):
    from sklearn_cirrus.executors import DaskExecutor

    X, y, X_test, y_test = a9a
    clf = ServerlessSGDClassifier(executor=DaskExecutor(client), n_workers=2, random_state=0)
    clf.fit(X, y)
    assert clf.score(X_test, y_test) >= 0.845
    assert log_loss(y_test, clf.predict_proba(X_test)) <= 0.330
    assert clf.fit_report_["invocations"] >= 2 * clf.n_iter_


def test_scheduler_address_as_executor_string(client, binary_data):
    X, y = binary_data
    address = client.scheduler.address.replace("tcp://", "dask://")
    clf = ServerlessSGDClassifier(executor=address, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.85


def test_matrix_factorization_on_dask(client):
    rng = np.random.RandomState(0)
    pairs = np.column_stack([rng.randint(0, 40, 3000), rng.randint(0, 30, 3000)])
    ratings = np.clip(3 + (pairs[:, 0] % 5 - 2) * 0.5 + (pairs[:, 1] % 3 - 1), 1, 5)
    from sklearn_cirrus.executors import DaskExecutor

    model = ServerlessMatrixFactorization(
        n_components=4, executor=DaskExecutor(client), max_iter=30, random_state=0
    )
    assert model.fit(pairs, ratings).score(pairs, ratings) > 0.9


def test_worker_memory_above_the_clusters_limit_is_refused(client, binary_data):
    from sklearn_cirrus.executors import DaskExecutor

    X, y = binary_data
    with pytest.raises(ValueError, match="more than the 2048 MB a worker of this Dask cluster"):
        ServerlessSGDClassifier(executor=DaskExecutor(client), worker_memory_mb=4096).fit(X, y)
