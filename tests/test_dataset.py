"""ShardedDataset: written once, reopened by URL, trained on and predicted over by workers."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)

from sklearn_cirrus import (
    ServerlessGridSearchCV,
    ServerlessSGDClassifier,
    ServerlessSGDRegressor,
    ShardedDataset,
)
from sklearn_cirrus.runtime import driver

EXACT = dict(executor="sequential", n_workers=1, shuffle=False, random_state=0, tol=None)


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "dataset")


def _classification(rng, n=600, d=20, sparse=False, labels=("no", "yes", "maybe")):
    X = (
        sp.random(n, d, density=0.2, format="csr", random_state=rng)
        if sparse
        else rng.normal(size=(n, d))
    )
    coef = rng.normal(size=(d, len(labels)))
    y = np.asarray(labels)[np.asarray(X @ coef).argmax(axis=1)]
    return X, y


@pytest.mark.parametrize("sparse", [False, True])
def test_round_trip_keeps_dtype_labels_and_order(folder, rng, sparse):
    X, y = _classification(rng, sparse=sparse)
    X = X.astype(np.float32)
    w = rng.uniform(size=X.shape[0])
    written = ShardedDataset.from_arrays(X, y, folder, sample_weight=w, shard_bytes=4096)
    reopened = ShardedDataset(folder)
    assert reopened.shape == X.shape and reopened.dtype == np.float32
    assert reopened.sparse == sparse and len(reopened._manifest["shards"]) > 5
    np.testing.assert_array_equal(reopened.targets(), y)
    np.testing.assert_array_equal(reopened.sample_weights(), w)
    summary = written.target_summary()
    np.testing.assert_array_equal(summary.labels, np.unique(y))
    np.testing.assert_array_equal(summary.counts, np.unique(y, return_counts=True)[1])


def test_written_once_and_removed_only_when_asked(folder, rng):
    X, y = _classification(rng)
    dataset = ShardedDataset.from_arrays(X, y, folder)
    ServerlessSGDClassifier(**EXACT, max_iter=2).fit(dataset)
    assert ShardedDataset(folder).n_samples == X.shape[0]  # the fit left it in place
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        ShardedDataset.from_arrays(X, y, folder)
    dataset.remove()
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        ShardedDataset(folder)


def test_views_read_their_rows_in_their_order(folder, rng):
    X, y = _classification(rng, n=300)
    dataset = ShardedDataset.from_arrays(X, y, folder, shard_bytes=2048)
    rows = rng.permutation(300)[:120]
    view = dataset[rows]
    assert view.shape == (120, X.shape[1])
    np.testing.assert_array_equal(view.targets(), y[rows])
    np.testing.assert_array_equal(view[(np.arange(10, 0, -1), ...)].targets(), y[rows][10:0:-1])
    mask = y == "yes"
    np.testing.assert_array_equal(dataset[mask].targets(), y[mask])
    np.testing.assert_array_equal(dataset[50:60].targets(), y[50:60])
    with pytest.raises(IndexError, match="rows only"):
        dataset[:, 3]


def _count_shard_reads(monkeypatch) -> list:
    """The ids of the shards whose columns the driver reads from now on."""
    reads = []
    original = ShardedDataset._read_shard_column

    def counted(self, shard_id, name):
        reads.append(shard_id)
        return original(self, shard_id, name)

    monkeypatch.setattr(ShardedDataset, "_read_shard_column", counted)
    return reads


def test_a_slice_of_a_dataset_costs_the_driver_no_row_arrays(folder, rng, monkeypatch):
    # a train/test split by rows of a large dataset: the view keeps a range, and its
    # targets' summary comes from the manifest but for the two shards it cuts
    X, y = _classification(rng, n=3000)
    dataset = ShardedDataset.from_arrays(X, y, folder, shard_bytes=4096)
    view = dataset[100:2900]
    assert isinstance(view._index, range)
    reads = _count_shard_reads(monkeypatch)
    summary = view.target_summary()
    assert len(reads) == 2
    np.testing.assert_array_equal(summary.counts, np.unique(y[100:2900], return_counts=True)[1])
    np.testing.assert_array_equal(view[::-5].targets(), y[100:2900][::-5])


def test_a_cross_validation_fold_reads_whole_shards_from_the_manifest(folder, rng, monkeypatch):
    # KFold's folds are index arrays: one run of rows becomes a range, two runs stay an
    # array in stored order, whose whole shards need no reading either
    X, y = _classification(rng, n=3000)
    dataset = ShardedDataset.from_arrays(X, y, folder, shard_bytes=4096)
    (train_a, test_a), (train_b, _), _ = KFold(3).split(X)
    assert isinstance(dataset[test_a]._index, range) and isinstance(dataset[train_a]._index, range)
    fold = dataset[train_b]
    reads = _count_shard_reads(monkeypatch)
    summary = fold.target_summary()
    assert len(reads) <= 2
    np.testing.assert_array_equal(summary.counts, np.unique(y[train_b], return_counts=True)[1])
    handle = fold.handle()
    assert sum(rows is None for rows in handle.rows) >= handle.n_shards - 2
    np.testing.assert_array_equal(fold.targets(), y[train_b])


@pytest.mark.parametrize("sparse", [False, True])
def test_fit_on_a_dataset_is_the_fit_on_its_arrays(folder, rng, sparse):
    # one shard, one sequential worker, no shuffling: the same minibatches in the same
    # order, so labels encoded by the workers, class weights from the manifest's counts
    # and the targets' scale must give exactly the arrays' model
    X, y = _classification(rng, sparse=sparse)
    dataset = ShardedDataset.from_arrays(X, y, folder)
    params = dict(EXACT, max_iter=3, class_weight="balanced")
    on_arrays = ServerlessSGDClassifier(**params).fit(X, y)
    on_dataset = ServerlessSGDClassifier(**params).fit(dataset)
    np.testing.assert_array_equal(on_dataset.classes_, on_arrays.classes_)
    np.testing.assert_allclose(on_dataset.coef_, on_arrays.coef_, rtol=1e-12)
    np.testing.assert_allclose(on_dataset.loss_curve_, on_arrays.loss_curve_, rtol=1e-12)
    assert on_dataset.n_features_in_ == X.shape[1]


def test_regressor_on_a_dataset_is_the_fit_on_its_arrays(folder, rng):
    X = rng.normal(size=(500, 8))
    y = 300 * X @ rng.normal(size=8) + 50
    dataset = ShardedDataset.from_arrays(X, y, folder)
    on_arrays = ServerlessSGDRegressor(**EXACT, max_iter=3).fit(X, y)
    on_dataset = ServerlessSGDRegressor(**EXACT, max_iter=3).fit(dataset)
    np.testing.assert_allclose(on_dataset.coef_, on_arrays.coef_, rtol=1e-12)
    np.testing.assert_allclose(on_dataset.predict(dataset), on_arrays.predict(X), rtol=1e-9)
    assert on_dataset.score(dataset) == pytest.approx(on_arrays.score(X, y), rel=1e-9)


def test_predictions_over_a_dataset_are_the_arrays_predictions(folder, rng):
    X, y = _classification(rng, n=900, sparse=True)
    w = rng.uniform(size=900)
    dataset = ShardedDataset.from_arrays(X, y, folder, sample_weight=w, shard_bytes=4096)
    clf = ServerlessSGDClassifier(random_state=0, max_iter=3).fit(X, y)
    view = dataset[::-3]
    np.testing.assert_allclose(clf.decision_function(view), clf.decision_function(X[::-3]))
    np.testing.assert_array_equal(clf.predict(view), clf.predict(X[::-3]))
    np.testing.assert_allclose(clf.predict_proba(dataset), clf.predict_proba(X))
    assert clf.score(dataset) == pytest.approx(clf.score(X, y, sample_weight=w))
    with pytest.raises(ValueError, match="brings its own targets"):
        clf.score(dataset, y)


def test_workers_shuffle_a_datasets_rows_every_epoch(folder, rng, monkeypatch):
    # a dataset keeps its rows in the order given; the workers shuffle each shard's rows,
    # anew every epoch, from the fit's seed
    X, y = _classification(rng, n=2000, labels=("a", "b"))
    dataset = ShardedDataset.from_arrays(X, y, folder)
    kwargs = dict(executor="sequential", n_workers=1, max_iter=3, tol=None)
    fits = [ServerlessSGDClassifier(**kwargs, random_state=seed).fit(dataset) for seed in (0, 0, 1)]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)  # one seed, one model
    assert not np.array_equal(fits[0].coef_, fits[2].coef_)
    in_order = ServerlessSGDClassifier(**kwargs, shuffle=False, random_state=0).fit(dataset)
    assert not np.array_equal(fits[0].coef_, in_order.coef_)
    seeds = []
    original = driver._FanOut.dispatch

    def dispatch(self):
        original(self)
        seeds.append(dict(self.epoch_seeds))

    monkeypatch.setattr(driver._FanOut, "dispatch", dispatch)
    ServerlessSGDClassifier(**kwargs, random_state=0).fit(dataset)
    assert len(set(seeds[-1].values())) == 3  # a new order every epoch


def test_labels_and_widths_are_checked(folder, rng):
    X, y = _classification(rng)
    dataset = ShardedDataset.from_arrays(X, y, folder)
    with pytest.raises(ValueError, match=r"labels \['yes'\] not in classes"):
        ServerlessSGDClassifier().partial_fit(dataset, classes=["maybe", "no"])
    clf = ServerlessSGDClassifier(**EXACT, max_iter=1).fit(X[:, :5], y)
    with pytest.raises(ValueError, match="X has 20 features, but .* expecting 5"):
        clf.predict(dataset)
    few = ShardedDataset.from_arrays(X, rng.normal(size=X.shape[0]), folder + "-few")
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        ServerlessSGDClassifier().fit(few)
    many = ShardedDataset.from_arrays(
        rng.normal(size=(1500, 2)), rng.normal(size=1500), folder + "-many"
    )
    with pytest.raises(ValueError, match="take more than 1000 values"):
        ServerlessSGDClassifier().fit(many)


def test_early_stopping_holds_out_rows_of_the_dataset(folder, rng):
    X, y = _classification(rng, n=1500)
    dataset = ShardedDataset.from_arrays(X, y, folder, shard_bytes=8192)
    clf = ServerlessSGDClassifier(random_state=0, early_stopping=True, max_iter=30)
    clf.fit(dataset)
    assert clf.validation_scores_ and min(clf.validation_scores_) > 0.6
    assert clf.fit_report_["samples"] < 30 * 1500


def test_cross_validation_over_a_dataset_splits_rows(folder, rng):
    X, y = _classification(rng, n=1500, d=10)
    dataset = ShardedDataset.from_arrays(X, y, folder, shard_bytes=4096)
    clf = ServerlessSGDClassifier(random_state=0, max_iter=10)
    cv = KFold(3, shuffle=True, random_state=0)
    on_dataset = cross_val_score(clf, dataset, cv=cv)
    on_arrays = cross_val_score(clf, X, y, cv=cv)
    assert on_dataset.mean() == pytest.approx(on_arrays.mean(), abs=0.03)
    predicted = cross_val_predict(clf, dataset, cv=cv)
    assert predicted.shape == y.shape and (predicted == y).mean() > 0.6
    search = GridSearchCV(clf, {"alpha": [1e-4, 1e-2]}, cv=cv).fit(dataset)
    assert search.best_score_ > 0.6 and search.score(dataset) > 0.6
    # a splitter that needs y gets the splits of the targets alone (docs/data.md)
    targets = dataset.targets()
    folds = list(StratifiedKFold(3).split(targets, targets))
    search = ServerlessGridSearchCV(clf, {"alpha": [1e-4, 1e-2]}, cv=folds).fit(dataset)
    assert search.best_score_ > 0.6


@pytest.mark.usefixtures("always_fan_out")
def test_process_workers_read_a_dataset_in_a_folder(folder, rng):
    X, y = _classification(rng, n=1200, sparse=True)
    dataset = ShardedDataset.from_arrays(X.astype(np.float32), y, folder, shard_bytes=4096)
    clf = ServerlessSGDClassifier(executor="processes", random_state=0, max_iter=4).fit(dataset)
    assert clf.fit_report_["path"] == "workers" and clf.fit_report_["invocations"] >= 8
    assert clf.score(dataset) > 0.7


def _svmlight_text(X, y, one_based=True):
    lines = []
    for row, label in zip(X, y, strict=True):
        cells = [f"{j + one_based}:{v:.6g}" for j, v in enumerate(row) if v != 0]
        lines.append(" ".join([f"{label:g}", *cells]))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("one_based", [True, False])
def test_workers_convert_svmlight_files_in_byte_ranges(tmp_path, rng, one_based):
    from sklearn.datasets import load_svmlight_files

    X = np.where(rng.uniform(size=(700, 12)) < 0.3, rng.normal(size=(700, 12)), 0)
    X[:, 0] = 0  # an index 0 nowhere, so 'auto' must be told by the zero-based file
    X[::7, 0] = 1.5 if not one_based else 0
    y = rng.randint(0, 3, 700)
    (tmp_path / "in").mkdir()
    paths = [tmp_path / "in" / f"part{i}.txt" for i in range(2)]
    paths[0].write_text(_svmlight_text(X[:400], y[:400], one_based))
    paths[1].write_text(_svmlight_text(X[400:], y[400:], one_based))
    expected = load_svmlight_files([str(p) for p in paths], zero_based="auto")
    # a folder of files, cut into ranges that split lines anywhere
    dataset = ShardedDataset.from_svmlight(
        str(tmp_path / "in"), str(tmp_path / "ds"), chunk_bytes=997, shard_bytes=2048
    )
    assert len(dataset._manifest["shards"]) > 10
    assert dataset.shape == (700, sp.vstack(expected[0::2]).shape[1])
    clf = ServerlessSGDClassifier(**EXACT, max_iter=1).fit(dataset)
    # the workers read back exactly what scikit-learn's own reader reads
    X_read = sp.vstack(expected[0::2]).toarray()
    np.testing.assert_allclose(
        clf.decision_function(dataset), clf.decision_function(X_read), rtol=1e-12
    )
    np.testing.assert_array_equal(dataset.targets(), np.concatenate(expected[1::2]))


def test_svmlight_conversion_checks_the_width_and_keeps_nothing_on_failure(tmp_path, rng):
    path = tmp_path / "data.txt"
    path.write_text("1 1:0.5 7:1\n-1 3:2\n")
    with pytest.raises(ValueError, match="n_features was set to 5, but input file contains 7"):
        ShardedDataset.from_svmlight(str(path), str(tmp_path / "ds"), n_features=5)
    assert not list((tmp_path / "ds").glob("*"))
    (tmp_path / "bad.txt").write_text("1 1:0.5\nnot a line\n")
    with pytest.raises(ValueError):
        ShardedDataset.from_svmlight(str(tmp_path / "bad.txt"), str(tmp_path / "ds"))
    assert not list((tmp_path / "ds").glob("*"))
    dataset = ShardedDataset.from_svmlight(str(path), str(tmp_path / "ds"), n_features=9)
    assert dataset.shape == (2, 9)


@pytest.mark.usefixtures("always_fan_out")
def test_a_dataset_in_object_storage(s3_options, tmp_path, rng):
    # files and shards in S3 (a real S3 server on loopback), credentials and endpoint
    # in storage_options, workers in other processes
    import s3fs

    X, y = _classification(rng, n=800, labels=("a", "b"))
    s3 = s3fs.S3FileSystem(**s3_options)
    s3.pipe("test/raw/data.svm", _svmlight_text(X, np.where(y == "a", -1, 1)).encode())
    name = f"s3://test/shards-{rng.randint(10**9)}"
    dataset = ShardedDataset.from_svmlight(
        "s3://test/raw/",
        name,
        chunk_bytes=20_000,
        storage_options=s3_options,
        executor="processes",
    )
    assert len(dataset._manifest["shards"]) > 3
    clf = ServerlessSGDClassifier(executor="processes", random_state=0, max_iter=5)
    clf.fit(dataset)
    reopened = ShardedDataset(name, storage_options=s3_options)
    assert clf.score(reopened) > 0.7
    dataset.remove()
    assert not s3.exists(name)
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        ShardedDataset(name, storage_options=s3_options)
