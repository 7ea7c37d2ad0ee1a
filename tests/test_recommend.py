"""ServerlessMatrixFactorization: quality on MovieLens, ids of any kind, fallbacks, readers."""

import gzip
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_path
from sklearn.model_selection import GridSearchCV, KFold, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cirrus import (
    ServerlessGridSearchCV,
    ServerlessMatrixFactorization,
    ShardedDataset,
    load_movielens,
)


@pytest.fixture(scope="module")
def movielens():
    X, y = load_movielens(dataset_path("ml-latest-small_ratings.csv.gz"))
    return train_test_split(X, y, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def toy():
    """Ratings with a known structure: user and item effects plus a rank-1 interaction."""
    rng = np.random.RandomState(0)
    users, items = rng.randint(0, 60, 4000), rng.randint(0, 50, 4000)
    taste, kind = rng.normal(size=60), rng.normal(size=50)
    ratings = np.clip(3 + 0.3 * taste[users] + 0.3 * kind[items] + taste[users] * kind[items], 1, 5)
    return np.column_stack([users, items]), ratings


def rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


@pytest.mark.parametrize("executor", ["threads", "processes"])
@pytest.mark.parametrize("n_workers", [1, 2, 4])
def test_movielens_rmse_with_defaults(movielens, executor, n_workers):
    X_train, X_test, y_train, y_test = movielens
    model = ServerlessMatrixFactorization(executor=executor, n_workers=n_workers, random_state=0)
    model.fit(X_train, y_train)
    assert rmse(model, X_test, y_test) <= 0.86


def test_one_worker_is_reproducible(toy):
    X, y = toy
    params = dict(n_components=4, n_workers=1, executor="sequential", random_state=0)
    first = ServerlessMatrixFactorization(**params).fit(X, y)
    second = ServerlessMatrixFactorization(**params).fit(X, y)
    np.testing.assert_array_equal(first.user_factors_, second.user_factors_)
    np.testing.assert_array_equal(first.item_bias_, second.item_bias_)


def test_learns_structure_and_exposes_factors(toy):
    X, y = toy
    model = ServerlessMatrixFactorization(n_components=4, max_iter=30, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9
    assert model.user_factors_.shape == (60, 4) and model.item_factors_.shape == (50, 4)
    assert model.user_bias_.shape == (60,) and model.item_bias_.shape == (50,)
    assert model.global_mean_ == pytest.approx(y.mean())
    assert len(model.loss_curve_) == model.n_iter_
    assert model.fit_report_["samples"] == model.n_iter_ * len(y)


def test_string_ids_in_a_dataframe_give_the_integer_model(toy):
    X, y = toy
    frame = pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "movie": [f"m{i}" for i in X[:, 1]]})
    params = dict(n_components=4, n_workers=1, executor="sequential", random_state=0)
    by_name = ServerlessMatrixFactorization(**params).fit(frame, y)
    by_number = ServerlessMatrixFactorization(**params).fit(X, y)
    np.testing.assert_allclose(by_name.predict(frame), by_number.predict(X))
    assert set(by_name.user_ids_) == {f"u{u}" for u in range(60)}


def test_unknown_users_and_items_fall_back_to_known_biases(toy):
    X, y = toy
    model = ServerlessMatrixFactorization(n_components=4, random_state=0).fit(X, y)
    user, item = X[0]
    u, i = list(model.user_ids_).index(user), list(model.item_ids_).index(item)
    got = model.predict(np.array([[user, 10**6], [10**6, item], [10**6, 10**6]]))
    expected = model.global_mean_ + np.array([model.user_bias_[u], model.item_bias_[i], 0.0])
    np.testing.assert_allclose(got, np.clip(expected, *model.rating_range_))


def test_predictions_are_clipped_to_training_range(toy):
    X, y = toy
    model = ServerlessMatrixFactorization(n_components=4, random_state=0).fit(X, y)
    predictions = model.predict(X)
    assert predictions.min() >= y.min() and predictions.max() <= y.max()


def test_recommend_top_items_excluding_seen(toy):
    X, y = toy
    model = ServerlessMatrixFactorization(n_components=4, random_state=0).fit(X, y)
    top = model.recommend([X[0, 0], 10**6], n=5)
    assert top.shape == (2, 5)
    seen = set(X[X[:, 0] == X[0, 0], 1])
    assert not seen & set(top[0])
    unseen = [i for i in model.item_ids_ if i not in seen]
    scores = model.predict(np.column_stack([np.full(len(unseen), X[0, 0]), unseen]))
    best = np.array(unseen)[np.argsort(-scores, kind="stable")[:5]]
    assert set(top[0]) == set(best)
    # an unknown user gets the items with the highest bias
    assert set(top[1]) == set(model.item_ids_[np.argsort(-model.item_bias_)[:5]])
    with_seen = model.recommend([X[0, 0]], n=50, exclude_seen=False)
    assert set(with_seen[0]) == set(model.item_ids_)


def test_pickled_model_predicts_the_same(toy):
    X, y = toy
    model = ServerlessMatrixFactorization(n_components=4, executor="processes", random_state=0)
    model.fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.recommend([1, 2]), model.recommend([1, 2]))


def test_works_in_a_pipeline_cross_validate_and_grid_search(toy):
    X, y = toy
    as_strings = FunctionTransformer(lambda pairs: pd.DataFrame(pairs).astype(str))
    pipeline = make_pipeline(
        as_strings, ServerlessMatrixFactorization(n_components=4, random_state=0)
    )
    assert pipeline.fit(X, y).score(X, y) > 0.8
    scores = cross_validate(
        ServerlessMatrixFactorization(n_components=4, random_state=0), X, y, cv=3
    )
    assert scores["test_score"].min() > 0.5
    search = GridSearchCV(
        ServerlessMatrixFactorization(random_state=0, max_iter=30),
        {"n_components": [4], "alpha": [0.01, 50.0]},
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert search.best_params_["alpha"] == 0.01


BAD_INPUT = [
    (lambda X, y: (X, np.where(np.arange(y.size) == 3, np.nan, y)), ValueError, "NaN"),
    (lambda X, y: (np.column_stack([X, X[:, 0]]), y), ValueError, "must have 2 columns"),
    (lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
    (lambda X, y: (X[:-1], y), ValueError, "inconsistent numbers of samples"),
    (
        lambda X, y: (np.array([[[1], 2]] * y.size, dtype=object), y),
        ValueError,
        "user ids must be hashable",
    ),
    (lambda X, y: (X.astype(float) * np.nan, y), ValueError, "NaN"),
    (
        lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 4, None, X), y),
        ValueError,
        "None",
    ),
    (
        lambda X, y: (
            np.where(np.arange(X.size).reshape(X.shape) == 4, np.nan, X.astype(object)),
            y,
        ),
        ValueError,
        "NaN",
    ),
]


def test_one_sample_score_warns_as_scikit_learn_does(toy):
    from sklearn.exceptions import UndefinedMetricWarning

    X, y = toy
    model = ServerlessMatrixFactorization(n_components=2, max_iter=2, random_state=0).fit(X, y)
    with pytest.warns(UndefinedMetricWarning, match="less than two samples"):
        assert np.isnan(model.score(X[:1], y[:1]))


@pytest.mark.parametrize("corrupt, error, message", BAD_INPUT)
def test_bad_input_is_rejected_clearly(toy, corrupt, error, message):
    X, y = corrupt(*toy)
    with pytest.raises(error, match=message):
        ServerlessMatrixFactorization(n_components=2).fit(X, y)


def test_dataframe_with_columns_swapped_is_refused_not_misread(toy):
    X, y = toy
    frame = pd.DataFrame({"user": X[:, 0], "movie": X[:, 1]})
    model = ServerlessMatrixFactorization(n_components=2, random_state=0).fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["user", "movie"])
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[["movie", "user"]])


MOVIELENS_LINES = [(1, 31, 2.5), (1, 1029, 3.0), (7, 31, 4.5)]


@pytest.mark.parametrize(
    "name, render",
    [
        (
            "ratings.csv",
            lambda rows: (
                "userId,movieId,rating,timestamp\n"
                + "".join(f"{u},{i},{r},964982703\n" for u, i, r in rows)
            ),
        ),
        ("u.data", lambda rows: "".join(f"{u}\t{i}\t{int(r)}\t881250949\n" for u, i, r in rows)),
        (
            "ratings.dat",
            lambda rows: "".join(f"{u}::{i}::{int(r)}::978300760\n" for u, i, r in rows),
        ),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_movielens_reader_formats(tmp_path, name, render, compressed):
    text = render(MOVIELENS_LINES)
    path = tmp_path / (name + (".gz" if compressed else ""))
    if compressed:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    X, y = load_movielens(path)
    np.testing.assert_array_equal(X, [[1, 31], [1, 1029], [7, 31]])
    expected = [r if name == "ratings.csv" else int(r) for _, _, r in MOVIELENS_LINES]
    np.testing.assert_array_equal(y, expected)


def test_movielens_reader_refuses_unknown_files(tmp_path):
    path = tmp_path / "ratings.parquet"
    path.write_text("x")
    with pytest.raises(ValueError, match="expected ratings.csv, u.data or ratings.dat"):
        load_movielens(path)


def test_movielens_reader_reads_the_shared_file():
    X, y = load_movielens(dataset_path("ml-latest-small_ratings.csv.gz"))
    assert X.shape == (100836, 2) and len(np.unique(X[:, 0])) == 610
    assert y.min() == 0.5 and y.max() == 5.0


# -- ratings in a ShardedDataset: read by the workers, never by the driver -------------


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    """MovieLens ratings as a CSV dataset whose id columns are categorical (strings)."""
    url = str(tmp_path_factory.mktemp("ratings") / "movielens")
    return ShardedDataset.from_csv(
        dataset_path("ml-latest-small_ratings.csv.gz"),
        url,
        target="rating",
        categorical=["userId", "movieId"],
        numeric=[],
    )


def test_fits_a_ratings_dataset_read_by_workers(ratings_csv):
    train, test = train_test_split(np.arange(ratings_csv.n_samples), test_size=0.2, random_state=0)
    model = ServerlessMatrixFactorization(executor="processes", random_state=0)
    model.fit(ratings_csv[train])
    ratings = ratings_csv.targets()
    # what fit learns before training, from the workers' map over the shards
    assert model.global_mean_ == pytest.approx(ratings[train].mean(), rel=1e-12)
    assert model.rating_range_ == (ratings[train].min(), ratings[train].max())
    X, _ = load_movielens(dataset_path("ml-latest-small_ratings.csv.gz"))
    assert set(model.user_ids_) == {str(u) for u in X[train, 0]}
    assert set(model.item_ids_) == {str(i) for i in X[train, 1]}
    assert model.item_ids_.dtype.kind == "U" and model.n_features_in_ == 2
    # predicted by workers over the test view, as well as from arrays (same bar)
    predicted = model.predict(ratings_csv[test])
    assert np.sqrt(np.mean((predicted - ratings[test]) ** 2)) <= 0.86
    assert model.score(ratings_csv[test]) == pytest.approx(
        1
        - np.sum((ratings[test] - predicted) ** 2)
        / np.sum((ratings[test] - ratings[test].mean()) ** 2)
    )


def test_dataset_fit_equals_the_arrays_fit_on_one_sequential_worker(toy, tmp_path):
    X, y = toy
    dataset = ShardedDataset.from_arrays(X, y, str(tmp_path / "toy"))
    params = dict(n_components=4, executor="sequential", n_workers=1, shuffle=False, max_iter=5)
    from_arrays = ServerlessMatrixFactorization(random_state=0, **params).fit(X, y)
    from_dataset = ServerlessMatrixFactorization(random_state=0, **params).fit(dataset)
    np.testing.assert_array_equal(from_dataset.user_ids_, from_arrays.user_ids_)
    np.testing.assert_array_equal(from_dataset.item_ids_, from_arrays.item_ids_)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(
            getattr(from_dataset, name), getattr(from_arrays, name), rtol=1e-9
        )
    np.testing.assert_allclose(from_dataset.predict(dataset), from_arrays.predict(X), rtol=1e-9)


def test_recommend_after_a_dataset_fit_reads_the_seen_items_from_it(toy, tmp_path):
    X, y = toy
    dataset = ShardedDataset.from_arrays(X, y, str(tmp_path / "toy"))
    params = dict(n_components=4, executor="sequential", n_workers=1, shuffle=False, random_state=0)
    from_arrays = ServerlessMatrixFactorization(**params).fit(X, y)
    from_dataset = ServerlessMatrixFactorization(**params).fit(dataset)
    users = [X[0, 0], X[1, 0], 10**6]
    top = from_dataset.recommend(users, n=5)
    np.testing.assert_array_equal(top, from_arrays.recommend(users, n=5))
    assert not set(X[X[:, 0] == X[0, 0], 1]) & set(top[0])
    # a pickled model still finds the dataset; once it is removed, the error says so
    restored = pickle.loads(pickle.dumps(from_dataset))
    np.testing.assert_array_equal(restored.recommend(users, n=5), top)
    dataset.remove()
    with pytest.raises(FileNotFoundError, match="fitted on .* are gone: .*exclude_seen=False"):
        from_dataset.recommend(users)
    unseen_kept = from_dataset.recommend(users, n=5, exclude_seen=False)
    np.testing.assert_array_equal(
        unseen_kept, from_arrays.recommend(users, n=5, exclude_seen=False)
    )


@pytest.mark.parametrize(
    "csv, message",
    [
        ("user,item,rating\n1,2,4.0\n,3,5.0\n", "NaN or infinity"),
        ("user,item,rating\n1.5,2,4.0\n2,3,5.0\n", "whole numbers"),
        ("user,item,age,rating\n1,2,30,4.0\n", "2 columns"),
        ("user,item\n1,2\n", "no targets"),
    ],
)
def test_bad_ratings_datasets_are_refused_clearly(tmp_path, csv, message):
    path = tmp_path / "ratings.csv"
    path.write_text(csv)
    target = "rating" if "rating" in csv else None
    dataset = ShardedDataset.from_csv(path, str(tmp_path / "bad"), target=target)
    model = ServerlessMatrixFactorization(executor="sequential", n_workers=1)
    with pytest.raises(ValueError, match=message):
        model.fit(dataset)
    assert dataset.exists()  # nothing stored is lost


def test_mixed_id_columns_and_missing_ids_are_refused(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,a,4.0\n2,,3.0\n")
    missing = ShardedDataset.from_csv(
        str(path), str(tmp_path / "missing"), target="rating", categorical=["user", "item"]
    )
    model = ServerlessMatrixFactorization(executor="sequential", n_workers=1)
    with pytest.raises(ValueError, match="missing id"):
        model.fit(missing)
    mixed = ShardedDataset.from_csv(
        str(path), str(tmp_path / "mixed"), target="rating", categorical=["item"]
    )
    with pytest.raises(ValueError, match="both numbers or both categorical"):
        model.fit(mixed)


def test_a_search_over_a_ratings_dataset_scores_as_over_the_arrays(toy, tmp_path):
    X, y = toy
    dataset = ShardedDataset.from_arrays(X, y, str(tmp_path / "toy"))
    model = ServerlessMatrixFactorization(
        n_components=4, executor="sequential", n_workers=1, shuffle=False, random_state=0
    )
    grid = {"alpha": [0.01, 0.1]}
    over_dataset = ServerlessGridSearchCV(model, grid, cv=KFold(3), executor="threads")
    over_arrays = ServerlessGridSearchCV(model, grid, cv=KFold(3), executor="threads")
    over_dataset.fit(dataset)
    over_arrays.fit(X, y)
    np.testing.assert_allclose(
        over_dataset.cv_results_["mean_test_score"], over_arrays.cv_results_["mean_test_score"]
    )
    assert over_dataset.best_params_ == over_arrays.best_params_
