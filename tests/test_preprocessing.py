"""Preprocessing in the workers: the transformers equal scikit-learn's, on arrays and datasets."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, StandardScaler

from sklearn_cirrus import ServerlessSGDClassifier, ShardedDataset
from sklearn_cirrus.data import load_shard
from sklearn_cirrus.data.batch import SparseRows
from sklearn_cirrus.preprocessing import (
    ServerlessFeatureHasher,
    ServerlessMaxAbsScaler,
    ServerlessMinMaxScaler,
    ServerlessNormalizer,
    ServerlessStandardScaler,
)

EXACT = dict(executor="sequential", n_workers=1, shuffle=False, random_state=0, tol=None)
COLUMNS = ["label", "I1", "I2", "C1", "C2"]


def _rows_of(dataset):
    """X of a dataset view as the workers' reader produces it (test helper)."""
    handle = dataset.handle()
    parts = [load_shard(handle, i).X for i in range(handle.n_shards)]
    if isinstance(parts[0], SparseRows):
        return sp.vstack([p.tocsr() for p in parts]).toarray()
    return np.vstack(parts)


def _dense(rng, n=700):
    X = rng.normal(loc=5, scale=[1, 10, 0.1, 3], size=(n, 4))
    X[:, 3] = 2.0  # a constant column: its scale stays 1, as in scikit-learn
    return X


@pytest.mark.parametrize(
    "ours, theirs, sparse",
    [
        (ServerlessStandardScaler(), StandardScaler(), False),
        (ServerlessStandardScaler(with_mean=False), StandardScaler(with_mean=False), True),
        (ServerlessMinMaxScaler((-1, 2), clip=True), MinMaxScaler((-1, 2), clip=True), False),
        (ServerlessMaxAbsScaler(), MaxAbsScaler(), True),
        (ServerlessMaxAbsScaler(), MaxAbsScaler(), False),
        (ServerlessNormalizer("l1"), Normalizer("l1"), True),
        (ServerlessNormalizer("max"), Normalizer("max"), False),
    ],
    ids=lambda value: type(value).__name__ if hasattr(value, "fit") else str(value),
)
def test_scalers_fitted_by_workers_equal_scikit_learns(tmp_path, rng, ours, theirs, sparse):
    X = _dense(rng)
    if sparse:
        X = sp.random(700, 30, density=0.1, format="csr", random_state=rng) * 7 - sp.random(
            700, 30, density=0.05, format="csr", random_state=rng
        )
    dataset = ShardedDataset.from_arrays(X, None, str(tmp_path / "d"), shard_bytes=2048)
    assert len(dataset._manifest["shards"]) > 5
    fitted = ours.fit(dataset)
    reference = theirs.fit(X)
    for name in ("mean_", "var_", "scale_", "min_", "data_min_", "data_max_", "max_abs_"):
        if getattr(reference, name, None) is not None:
            np.testing.assert_allclose(getattr(fitted, name), getattr(reference, name), rtol=1e-9)
    assert getattr(fitted, "n_samples_seen_", 700) == getattr(reference, "n_samples_seen_", 700)
    expected = reference.transform(X)
    expected = expected.toarray() if sp.issparse(expected) else expected
    np.testing.assert_allclose(_rows_of(fitted.transform(dataset)), expected, rtol=1e-9)
    # on arrays, it is scikit-learn's own
    on_arrays = ours.fit_transform(X)
    np.testing.assert_allclose(
        on_arrays.toarray() if sp.issparse(on_arrays) else on_arrays, expected, rtol=1e-12
    )


def test_scalers_refuse_what_scikit_learns_refuse(tmp_path, rng):
    X = sp.random(100, 5, density=0.3, format="csr", random_state=rng)
    dataset = ShardedDataset.from_arrays(X, None, str(tmp_path / "d"))
    with pytest.raises(ValueError, match="Cannot center sparse matrices"):
        ServerlessStandardScaler().fit(dataset)
    with pytest.raises(TypeError, match="does not support sparse input"):
        ServerlessMinMaxScaler().fit(dataset)
    scaler = ServerlessMaxAbsScaler().fit(X[:, :3])
    with pytest.raises(ValueError, match="X has 5 features, but .* expecting 3"):
        scaler.transform(dataset)


def _clicks(rng, n=2000):
    """A small click log: label, two counts (some missing), two categories (some empty)."""
    frame = pd.DataFrame(
        {
            "label": rng.randint(0, 2, n),
            "I1": rng.poisson(3, n).astype(float),
            "I2": rng.randint(-5, 5, n),
            "C1": rng.choice(["68fd1e64", "05db9164", "", "ünï"], n),
            "C2": rng.choice(["a", "bb", "ccc"], n),
        }
    )
    frame.loc[::9, "I1"] = np.nan
    # the label depends on the categories, so that a model can learn it
    frame.loc[frame.C1 == "68fd1e64", "label"] = 1
    return frame


def test_hasher_on_a_dataframe_is_scikit_learns_feature_hasher(rng):
    frame = _clicks(rng, 500).drop(columns="label")
    rows = [
        {k: v for k, v in row.items() if v == v and v != ""} for row in frame.to_dict("records")
    ]
    for n_features in (2**20, 7):  # 7: collisions summed, as scikit-learn does
        expected = FeatureHasher(n_features=n_features).transform(rows)
        hashed = ServerlessFeatureHasher(n_features=n_features).fit_transform(
            frame.replace("", None)
        )
        assert abs(hashed - expected).max() == 0
        assert hashed.shape == (500, n_features)


def test_pipeline_on_csv_files_is_the_in_memory_pipeline(tmp_path, rng):
    # the workers convert the TSV, hash and scale every shard as they read it; one
    # shard and one sequential worker make it exactly the driver-side path
    frame = _clicks(rng)
    path = tmp_path / "clicks.tsv"
    path.write_text(frame.to_csv(sep="\t", header=False, index=False))
    dataset = ShardedDataset.from_csv(
        str(path),
        str(tmp_path / "ds"),
        sep="\t",
        header=False,
        names=COLUMNS,
        target="label",
        categorical=["C1", "C2"],
    )
    assert dataset.columns == {"numeric": ["I1", "I2"], "categorical": ["C1", "C2"]}

    def pipeline():
        return make_pipeline(
            ServerlessFeatureHasher(n_features=2**12),
            ServerlessMaxAbsScaler(),
            ServerlessSGDClassifier(**EXACT, max_iter=3),
        )

    on_files = pipeline().fit(dataset)
    read = pd.read_csv(path, sep="\t", header=None, names=COLUMNS, keep_default_na=False)
    X = read.drop(columns="label").replace("", None).astype({"I1": float})
    in_memory = pipeline().fit(X, read["label"])
    np.testing.assert_allclose(on_files[-1].coef_, in_memory[-1].coef_, rtol=1e-9)
    np.testing.assert_allclose(on_files[1].scale_, in_memory[1].scale_, rtol=1e-12)
    assert on_files.score(dataset) == pytest.approx(in_memory.score(X, read["label"]))
    assert on_files.score(dataset) > 0.6


def test_csv_columns_by_header_and_what_a_table_needs(tmp_path, rng):
    frame = _clicks(rng, 300)
    for i, part in enumerate([frame[:120], frame[120:]]):
        (tmp_path / f"part{i}.csv").write_text(part.to_csv(index=False))
    dataset = ShardedDataset.from_csv(
        str(tmp_path / "part*.csv"),
        str(tmp_path / "ds"),
        target="label",
        categorical=["C1", "C2"],
        chunk_bytes=1000,  # ranges that split lines, headers skipped at each file's start
    )
    assert dataset.n_samples == 300
    np.testing.assert_array_equal(dataset.targets(), frame["label"])
    with pytest.raises(ValueError, match="has categorical columns"):
        ServerlessSGDClassifier().fit(dataset)
    with pytest.raises(ValueError, match="hashes a dataset's raw columns"):
        ServerlessFeatureHasher().fit_transform(
            ShardedDataset.from_arrays(np.ones((3, 2)), None, str(tmp_path / "numbers"))
        )
    numbers = ShardedDataset.from_csv(
        str(tmp_path / "part0.csv"), str(tmp_path / "n"), target="label", numeric=["I2"]
    )
    np.testing.assert_array_equal(_rows_of(numbers), frame[["I2"]][:120].to_numpy())
    with pytest.raises(ValueError, match="no column 'I9'"):
        ShardedDataset.from_csv(str(tmp_path / "part0.csv"), str(tmp_path / "x"), target="I9")


def test_parquet_row_groups_converted_by_workers(tmp_path, rng):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _clicks(rng, 900).replace("", None)
    for i, part in enumerate([frame[:500], frame[500:]]):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, tmp_path / f"part{i}.parquet", row_group_size=200)
    dataset = ShardedDataset.from_parquet(
        str(tmp_path / "*.parquet"), str(tmp_path / "ds"), target="label"
    )
    # string columns are categorical unless told; a shard a row group at least
    assert dataset.columns == {"numeric": ["I1", "I2"], "categorical": ["C1", "C2"]}
    assert len(dataset._manifest["shards"]) == 5
    np.testing.assert_array_equal(dataset.targets(), frame["label"])
    hasher = ServerlessFeatureHasher(n_features=2**12)
    expected = hasher.fit_transform(frame.drop(columns="label")).toarray()
    np.testing.assert_array_equal(_rows_of(hasher.transform(dataset)), expected)
    with pytest.raises(ValueError, match="no column 'nope'"):
        ShardedDataset.from_parquet(str(tmp_path / "*.parquet"), str(tmp_path / "x"), target="nope")
