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


def _dask_arrays(rng, n=3000, chunk=700):
    da = pytest.importorskip("dask.array")
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = (X @ rng.normal(size=8) > 0).astype(int)
    return X, y, da.from_array(X, chunks=(chunk, 4)), da.from_array(y, chunks=chunk)


def test_a_dask_array_becomes_shards_block_by_block(client, tmp_path, rng, monkeypatch):
    import dask.array as da

    from sklearn_cirrus import ShardedDataset

    X, y, dX, dy = _dask_arrays(rng)

    def materialised(*args, **kwargs):
        raise AssertionError("the driver materialised the dask array")

    monkeypatch.setattr(da.Array, "__array__", materialised)
    dataset = ShardedDataset.from_dask(dX, dy, str(tmp_path / "ds"))
    # one shard a row block, written by the Dask workers; float32 stays float32
    assert len(dataset._manifest["shards"]) == len(dX.chunks[0])
    assert dataset.dtype == np.float32 and dataset.shape == X.shape
    np.testing.assert_array_equal(dataset.targets(), y)
    clf = ServerlessSGDClassifier(random_state=0, max_iter=5).fit(dataset)
    assert clf.score(X, y) > 0.9


def test_fit_on_dask_collections_stages_them_as_a_dataset(client, tmp_path, rng, monkeypatch):
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    X, y, dX, dy = _dask_arrays(rng)
    monkeypatch.setattr(da.Array, "__array__", lambda *a, **k: pytest.fail("materialised"))
    clf = ServerlessSGDClassifier(random_state=0, max_iter=5, data_url=str(tmp_path / "stage"))
    clf.fit(dX, dy)
    assert clf.score(X, y) > 0.9 and clf.n_features_in_ == 8
    assert not list((tmp_path / "stage").glob("*"))  # the staged dataset is gone
    # a dataframe with a string column: hashed in the workers' readers
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "site": np.where(y == 1, "s1", "s2")})
    dframe = dd.from_pandas(frame, npartitions=3)
    from sklearn.pipeline import make_pipeline

    from sklearn_cirrus import ShardedDataset
    from sklearn_cirrus.preprocessing import ServerlessFeatureHasher

    dataset = ShardedDataset.from_dask(
        dframe, dd.from_pandas(pd.Series(y), npartitions=3), str(tmp_path / "frame")
    )
    assert dataset.columns == {"numeric": ["a", "b"], "categorical": ["site"]}
    model = make_pipeline(ServerlessFeatureHasher(2**10), ServerlessSGDClassifier(max_iter=5))
    assert model.fit(dataset).score(dataset) > 0.95
