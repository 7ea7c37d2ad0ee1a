"""ServerlessMatrixFactorization: quality on MovieLens, ids of any kind, fallbacks, readers."""

import gzip
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_path
from sklearn.model_selection import GridSearchCV, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cirrus import ServerlessMatrixFactorization, load_movielens


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
]


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
