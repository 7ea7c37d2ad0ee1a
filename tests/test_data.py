"""The data plane: shards hold whole minibatches, round-trip exactly, stream with prefetch."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cirrus.data import ShardReader, load_shard, minibatches, remove, stage
from sklearn_cirrus.data.staging import plan_shard_rows
from sklearn_cirrus.kernels import Batch


@pytest.fixture(params=["memory", "folder"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://test-{abs(hash(request.node.name))}"
    return str(tmp_path / "shards")


def _data(rng, sparse, n=1000, d=30):
    X = (
        sp.random(n, d, density=0.1, format="csr", random_state=rng)
        if sparse
        else rng.normal(size=(n, d))
    )
    return X, rng.randint(0, 3, n), rng.uniform(size=n)


@pytest.mark.parametrize("sparse", [True, False])
def test_stage_round_trips_in_order(url, sparse, rng):
    X, y, w = _data(rng, sparse)
    handle = stage(X, y, w, url, batch_size=64, n_workers=2)
    assert sum(handle.shard_rows) == 1000 and handle.sparse == sparse
    assert all(rows % 64 == 0 for rows in handle.shard_rows[:-1])
    parts = [load_shard(handle, i) for i in range(handle.n_shards)]
    X_back = (
        sp.vstack([p.X.tocsr() for p in parts]).toarray()
        if sparse
        else np.vstack([p.X for p in parts])
    )
    np.testing.assert_array_equal(X_back, X.toarray() if sparse else X)
    np.testing.assert_array_equal(np.concatenate([p.y for p in parts]), y)
    np.testing.assert_array_equal(np.concatenate([p.sample_weight for p in parts]), w)
    remove(handle)
    fs, root = handle.filesystem()
    assert not fs.exists(root)


def test_stage_applies_row_order_and_narrows_64bit_indices(url, rng):
    X, y, w = _data(rng, True, n=200)
    X.indices = X.indices.astype(np.int64)
    order = rng.permutation(200)
    handle = stage(X, y, w, url, batch_size=50, order=order)
    shard = load_shard(handle, 0)
    assert shard.X.indices.dtype == np.int32
    np.testing.assert_array_equal(shard.X.tocsr().toarray(), X[order[: shard.n_samples]].toarray())
    np.testing.assert_array_equal(shard.y, y[order[: shard.n_samples]])
    remove(handle)


def test_staged_data_on_this_machine_is_readable_by_its_owner_only(tmp_path, rng):
    import stat

    from sklearn_cirrus import ShardedDataset

    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    stage(X, y, np.ones(50), str(tmp_path / "fit"), batch_size=10)
    ShardedDataset.from_arrays(X, y, str(tmp_path / "dataset"), shard_bytes=100)
    for folder in ("fit", "dataset"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700
        files = list((tmp_path / folder).iterdir())
        assert len(files) > 2
        assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_shards_are_sized_by_bytes_not_dataset():
    # a 10x larger dataset gets more shards of the same size, never larger ones
    small = plan_shard_rows(100_000, 500.0, batch_size=256, n_workers=1, shard_bytes=4 * 2**20)
    large = plan_shard_rows(1_000_000, 500.0, batch_size=256, n_workers=1, shard_bytes=4 * 2**20)
    assert small == large and small * 500 <= 4 * 2**20
    # enough shards per worker to rebalance
    assert plan_shard_rows(1000, 8.0, batch_size=10, n_workers=2, shard_bytes=2**30) == 130


def test_minibatches_cover_shard(rng):
    X, y, w = _data(rng, True, n=130)
    batches = list(minibatches(Batch(X, y, w), 50))
    assert [b.n_samples for b in batches] == [50, 50, 30]
    # a tail of less than half a batch joins the last batch: no step on a few rows
    assert [b.n_samples for b in minibatches(Batch(X[:120], y[:120], w[:120]), 50)] == [50, 70]
    np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), y)


def test_reader_prefetches_all_shards_in_order(rng):
    X, y, w = _data(rng, False, n=1000)
    handle = stage(X, y, w, "memory://reader", batch_size=100, n_workers=2)
    reader = ShardReader(handle, [2, 0, 1], prefetch=2)
    ids = [shard_id for shard_id, _ in reader]
    reader.close()
    assert ids == [2, 0, 1]
    remove(handle)


def test_reader_raises_reading_errors_in_consumer(rng):
    X, y, w = _data(rng, False, n=100)
    handle = stage(X, y, w, "memory://broken", batch_size=10)
    remove(handle)
    reader = ShardReader(handle, [0])
    with pytest.raises(FileNotFoundError):
        list(reader)
    reader.close()


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_rows_taken_in_any_order(rng, index_dtype):
    from sklearn_cirrus.data.batch import SparseRows

    X = sp.random(60, 9, density=0.3, format="lil", random_state=rng, dtype=np.float32)
    X[17] = 0  # an empty row
    X = X.tocsr()
    rows = np.array([5, 5, 0, 59, 17, 3])  # a row twice, too
    taken = SparseRows(X.data, X.indices.astype(index_dtype), X.indptr, X.shape).take(rows)
    assert taken.data.dtype == np.float32 and taken.shape == (6, 9)
    np.testing.assert_array_equal(taken.tocsr().toarray(), X[rows].toarray())


@pytest.mark.usefixtures("always_fan_out")
def test_float32_input_stays_float32_in_the_shards(rng, monkeypatch):
    # half the bytes to stage and stream; the kernels read it as float64, exactly
    from sklearn_cirrus import ServerlessSGDClassifier
    from sklearn_cirrus.runtime import driver

    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    staged = []
    original = driver.stage

    def spy(X, *args, **kwargs):
        staged.append(X.dtype)
        return original(X, *args, **kwargs)

    monkeypatch.setattr(driver, "stage", spy)
    params = dict(executor="sequential", n_workers=1, random_state=0, max_iter=3, tol=None)
    on_float32 = ServerlessSGDClassifier(**params).fit(X, y)
    on_float64 = ServerlessSGDClassifier(**params).fit(X.astype(np.float64), y)
    assert staged == [np.float32, np.float64]
    np.testing.assert_array_equal(on_float32.coef_, on_float64.coef_)


def test_shard_members_are_read_in_place_and_checked_compressed_or_not(rng):
    import io

    from sklearn_cirrus.data.integrity import read_members

    arrays = {
        "data": rng.normal(size=50),
        "indices": np.arange(50, dtype=np.int32),
        "names": np.asarray(["a", "bc"]),
        "categorical": np.asarray([[b"x", b""]]),
    }
    stored, compressed = io.BytesIO(), io.BytesIO()
    np.savez(stored, **arrays)
    np.savez_compressed(compressed, **arrays)
    for f in (stored, compressed):
        read = read_members(f, "mem://shard.npz")
        assert read.keys() == arrays.keys()
        for name, values in arrays.items():
            np.testing.assert_array_equal(read[name], values)
            assert read[name].dtype == values.dtype
            assert read[name].flags.writeable
    assert read_members(stored, "mem://shard.npz", names={"data"}).keys() == {"data"}
