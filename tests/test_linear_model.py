"""ServerlessSGDClassifier and ServerlessSGDRegressor behave as scikit-learn users expect."""

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import log_loss, recall_score

from sklearn_cirrus import (
    ServerlessSGDClassifier,
    ServerlessSGDRegressor,
    make_hashed_classification,
)


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=2000, n_features=20, random_state=0)


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
@pytest.mark.parametrize("n_workers", [1, 2, 4])
def test_a9a_quality_on_every_executor(a9a, executor, n_workers):
    X, y, X_test, y_test = a9a
    clf = ServerlessSGDClassifier(executor=executor, n_workers=n_workers, random_state=0)
    clf.fit(X, y)
    assert clf.score(X_test, y_test) >= 0.845
    assert log_loss(y_test, clf.predict_proba(X_test)) <= 0.330


def _logistic_objective(coef, intercept, X, y, alpha):
    """Mean log-loss plus ``alpha / 2 * ||w||^2``: what both models are asked to minimise."""
    margin = np.where(y == 1, 1.0, -1.0) * (X @ coef.ravel() + intercept[0])
    return np.logaddexp(0.0, -margin).mean() + 0.5 * alpha * coef.ravel() @ coef.ravel()


def test_objective_reaches_logistic_regression_optimum_on_power_law_features():
    # rare features are most of a hashed model: a penalty applied only when a feature
    # occurs would leave them far too large, and the objective far above the optimum
    X, y = make_hashed_classification(20_000, n_features=2**18, nnz_per_row=20)
    alpha = 1e-4
    reference = LogisticRegression(
        C=1 / (X.shape[0] * alpha), solver="newton-cg", tol=1e-8, max_iter=1000
    ).fit(X, y)
    optimum = _logistic_objective(reference.coef_, reference.intercept_, X, y, alpha)
    clf = ServerlessSGDClassifier(alpha=alpha, n_workers=1, executor="sequential", random_state=0)
    clf.fit(X, y)
    assert _logistic_objective(clf.coef_, clf.intercept_, X, y, alpha) <= 1.005 * optimum


@pytest.mark.parametrize("penalty, alpha", [("l1", 0.1), ("l1", 0.01), ("elasticnet", 0.1)])
def test_l1_zeros_as_many_weights_as_sgd_classifier(penalty, alpha):
    X, y = make_classification(n_samples=2000, n_features=50, n_informative=5, random_state=0)
    reference = SGDClassifier(penalty=penalty, alpha=alpha, random_state=0).fit(X, y)
    clf = ServerlessSGDClassifier(
        penalty=penalty, alpha=alpha, n_workers=1, executor="sequential", random_state=0
    ).fit(X, y)
    expected = np.sum(reference.coef_ == 0)
    assert abs(np.sum(clf.coef_ == 0) - expected) <= 0.2 * expected


def test_n_jobs_sets_the_number_of_workers_as_sgd_classifier_users_expect(binary):
    X, y = binary
    params = {"executor": "processes", "max_iter": 3, "tol": None, "random_state": 0}
    one = ServerlessSGDClassifier(n_jobs=1, n_workers=4, **params).fit(X, y)
    every_cpu = ServerlessSGDClassifier(n_jobs=-1, n_workers=1, **params).fit(X, y)
    default = ServerlessSGDClassifier(n_workers=1, **params).fit(X, y)
    # one invocation an epoch per worker (the data makes 8 shards)
    assert one.fit_report_["invocations"] == 3 == default.fit_report_["invocations"]
    assert every_cpu.fit_report_["invocations"] == 3 * min(effective_n_jobs(-1), 8)
    assert not one.__sklearn_tags__().non_deterministic
    assert ServerlessSGDClassifier(n_jobs=-1).get_params()["n_jobs"] == -1


def test_multiclass_is_one_vs_rest_and_close_to_sklearn_sgd():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = ServerlessSGDClassifier(random_state=0, eta0=0.5).fit(X[:1400], y[:1400])
    reference = SGDClassifier(loss="log_loss", random_state=0).fit(X[:1400], y[:1400])
    assert clf.coef_.shape == (10, 64) and clf.intercept_.shape == (10,)
    assert clf.decision_function(X[:3]).shape == (3, 10)
    assert clf.score(X[1400:], y[1400:]) >= reference.score(X[1400:], y[1400:]) - 0.03
    proba = clf.predict_proba(X[1400:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[1400:]))


def test_string_labels_round_trip(binary):
    X, y = binary
    labels = np.array(["spam", "ham"])[y]
    clf = ServerlessSGDClassifier(random_state=0).fit(X, labels)
    assert set(clf.predict(X)) == {"spam", "ham"} and list(clf.classes_) == ["ham", "spam"]


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_formats_and_index_widths_give_the_csr_model(a9a_small, fmt, index_dtype):
    X, y, _, _ = a9a_small
    X = X.astype(np.float64)
    params = dict(n_workers=1, executor="sequential", random_state=0, max_iter=3, tol=None)
    expected = ServerlessSGDClassifier(**params).fit(X, y)
    other = sp.csr_matrix(X).asformat(fmt)
    if fmt == "coo":
        other.row, other.col = other.row.astype(index_dtype), other.col.astype(index_dtype)
    else:
        other.indices = other.indices.astype(index_dtype)
        other.indptr = other.indptr.astype(index_dtype)
    got = ServerlessSGDClassifier(**params).fit(other, y)
    np.testing.assert_allclose(got.coef_, expected.coef_)


def test_sparse_workers_pull_only_touched_rows(a9a_small):
    X, y, _, _ = a9a_small
    clf = ServerlessSGDClassifier(n_workers=1, executor="sequential", random_state=0).fit(X, y)
    never_seen = np.asarray(X.sum(axis=0)).ravel() == 0
    assert never_seen.any()
    # features absent from the data are never pulled, pushed or decayed
    np.testing.assert_array_equal(clf.coef_[0, never_seen], 0.0)


def test_class_weight_balanced_raises_minority_recall():
    X, y = make_classification(n_samples=3000, weights=[0.95], flip_y=0, random_state=0)
    plain = ServerlessSGDClassifier(random_state=0).fit(X, y)
    balanced = ServerlessSGDClassifier(class_weight="balanced", random_state=0).fit(X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.05


def test_sample_weight_zero_ignores_rows(binary):
    X, y = binary
    flipped = 1 - y
    weights = np.r_[np.ones(1000), np.zeros(1000)]
    X2, y2 = np.vstack([X[:1000], X[:1000]]), np.r_[y[:1000], flipped[:1000]]
    clf = ServerlessSGDClassifier(random_state=0).fit(X2, y2, sample_weight=weights)
    assert clf.score(X[1000:], y[1000:]) > 0.85


def test_warm_start_continues_from_previous_solution(binary):
    X, y = binary
    params = dict(max_iter=1, tol=None, random_state=0, n_workers=1, executor="sequential")
    clf = ServerlessSGDClassifier(warm_start=True, **params).fit(X, y)
    first = clf.coef_.copy()
    clf.fit(X, y)
    cold = ServerlessSGDClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(cold.coef_, first)
    assert not np.allclose(clf.coef_, first)


def test_partial_fit_learns_over_calls_and_checks_classes(binary):
    X, y = binary
    clf = ServerlessSGDClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:500], y[:500], classes=[0, 1])
    t_after_one = clf.t_
    for start in range(500, 2000, 500):
        clf.partial_fit(X[start : start + 500], y[start : start + 500])
    assert clf.t_ == pytest.approx(t_after_one + 1500)
    assert len(clf.loss_curve_) == 4 and clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match="classes should include all valid labels"):
        clf.partial_fit(X[:10], np.full(10, 7))
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:10, :3], y[:10])


def test_predict_proba_only_for_probabilistic_losses(binary):
    X, y = binary
    assert not hasattr(ServerlessSGDClassifier(loss="hinge"), "predict_proba")
    huber = ServerlessSGDClassifier(loss="modified_huber", random_state=0).fit(X, y)
    proba = huber.predict_proba(X)
    assert proba.shape == (2000, 2) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron", "huber"])
def test_other_classification_losses_learn(binary, loss):
    X, y = binary
    assert ServerlessSGDClassifier(loss=loss, random_state=0).fit(X, y).score(X, y) > 0.85


def test_early_stopping_uses_a_validation_split(binary):
    X, y = binary
    clf = ServerlessSGDClassifier(early_stopping=True, n_iter_no_change=2, random_state=0)
    clf.fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < clf.max_iter
    assert max(clf.validation_scores_) > 0.85
    with pytest.raises(ValueError, match="early_stopping should be False with partial_fit"):
        ServerlessSGDClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize(
    "schedule",
    [
        dict(learning_rate="optimal", optimizer="sgd"),
        dict(learning_rate="invscaling", eta0=1.0, power_t=0.25),
        dict(learning_rate="adaptive", eta0=0.5),
    ],
)
def test_schedules_learn(binary, schedule):
    X, y = binary
    clf = ServerlessSGDClassifier(random_state=0, **schedule)
    assert clf.fit(X, y).score(X, y) > 0.85


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_optimizers_learn(binary, optimizer):
    X, y = binary
    clf = ServerlessSGDClassifier(optimizer=optimizer, eta0=0.05, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.85


@pytest.mark.parametrize(
    "loss", ["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]
)
def test_regressor_fits_linear_data(loss):
    X, y = make_regression(n_samples=3000, n_features=10, noise=1.0, random_state=0)
    y = y / y.std()
    reg = ServerlessSGDRegressor(loss=loss, eta0=0.5, epsilon=0.01, random_state=0).fit(X, y)
    assert reg.coef_.shape == (10,) and reg.intercept_.shape == (1,)
    assert reg.score(X, y) > 0.98


def test_regressor_partial_fit_and_early_stopping():
    X, y = make_regression(n_samples=2000, n_features=5, noise=0.5, random_state=1)
    y = y / y.std()
    reg = ServerlessSGDRegressor(eta0=0.5, random_state=0)
    for _ in range(5):
        reg.partial_fit(X, y)
    assert reg.score(X, y) > 0.98
    stopped = ServerlessSGDRegressor(early_stopping=True, eta0=0.5, random_state=0).fit(X, y)
    assert stopped.validation_scores_ and stopped.validation_scores_[-1] > 0.98


def test_regressor_streams_unscaled_targets_as_well_as_sgdregressor():
    # targets in the hundreds, defaults, one partial_fit per chunk: AdaGrad's steps
    # follow the target's units, so five chunks are enough, as for SGDRegressor
    X, y = make_regression(n_samples=6000, n_features=20, noise=1.0, random_state=0)
    chunks = np.array_split(np.arange(5000), 5)
    ours, reference = ServerlessSGDRegressor(random_state=0), SGDRegressor(random_state=0)
    for chunk in chunks:
        ours.partial_fit(X[chunk], y[chunk])
        reference.partial_fit(X[chunk], y[chunk])
    held_out = slice(5000, None)
    assert ours.score(X[held_out], y[held_out]) > reference.score(X[held_out], y[held_out]) - 0.01


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_fitted_model_pickles_and_predicts_without_store(binary, tmp_path, dump, load):
    X, y = binary
    clf = ServerlessSGDClassifier(executor="processes", random_state=0).fit(X, y)
    if dump is None:
        joblib.dump(clf, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    else:
        restored = load(dump(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # nothing live is kept: no executor, store or staged data
    assert isinstance(restored.executor, str) and restored.store is None
    assert not any(
        "store" in name or "executor" in name for name in vars(restored) if name.endswith("_")
    )


# scikit-learn's own messages for bad input
BAD_INPUT = [
    (
        lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
        "Input X contains NaN",
    ),
    (
        lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y),
        "Input X contains infinity",
    ),
    (lambda X, y: (X[:0], y[:0]), "0 sample"),
    (lambda X, y: (X, np.zeros_like(y)), "The number of classes has to be greater than one"),
    (lambda X, y: (X[:-1], y), "inconsistent numbers of samples"),
    (lambda X, y: (np.full(X.shape, "a", dtype=object), y), "could not convert string to float"),
    (lambda X, y: (X, np.where(np.arange(y.size) == 3, np.nan, y)), "Input y contains NaN"),
]


@pytest.mark.parametrize("corrupt, message", BAD_INPUT)
def test_bad_input_gets_sklearns_error(binary, corrupt, message):
    X, y = corrupt(*binary)
    with pytest.raises(ValueError, match=message):
        ServerlessSGDClassifier().fit(X, y)


def test_wrong_number_of_features_at_predict(binary):
    X, y = binary
    clf = ServerlessSGDClassifier(random_state=0).fit(X, y)
    with pytest.raises(
        ValueError, match="X has 5 features, but ServerlessSGDClassifier is expecting 20"
    ):
        clf.predict(X[:, :5])
    reg = ServerlessSGDRegressor(random_state=0).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="X has 5 features"):
        reg.predict(X[:, :5])


def test_invalid_parameters_are_named(binary):
    X, y = binary
    with pytest.raises(ValueError, match="'optimizer' parameter .* must be a str among"):
        ServerlessSGDClassifier(optimizer="adam").fit(X, y)
    with pytest.raises(ValueError, match="'n_workers' parameter"):
        ServerlessSGDClassifier(n_workers=0).fit(X, y)
    with pytest.raises(ValueError, match="valid executors are"):
        ServerlessSGDClassifier(executor="lambda").fit(X, y)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ServerlessSGDClassifier(learning_rate="optimal", alpha=0).fit(X, y)


def _eager_averaged_sgd(X, y, *, eta, alpha, batch_size, epochs, average_start):
    """Minibatch SGD with log-loss and L2 as the kernel steps it, but eager: every weight
    decays every step; the average of the iterates from the step that brings the samples
    seen to ``average_start`` on."""
    signs = np.where(y == 1, 1.0, -1.0)
    w, b = np.zeros(X.shape[1]), 0.0
    sums, sum_b, steps, seen = np.zeros(X.shape[1]), 0.0, 0, 0
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            margin = signs[rows] * (X[rows] @ w + b)
            dloss = -signs[rows] / (1.0 + np.exp(margin))
            w = w * (1.0 - eta * alpha) - eta * (X[rows].T @ dloss) / dloss.size
            b -= eta * dloss.mean()
            seen += dloss.size
            if seen >= average_start:
                sums, sum_b, steps = sums + w, sum_b + b, steps + 1
    return sums / steps, sum_b / steps


@pytest.mark.parametrize("average", [True, 3000])
def test_averaged_sgd_is_the_average_of_every_iterate(average):
    # sparse power-law rows: most weights miss most steps and join the average lazily,
    # in closed form; one sequential worker, so the steps are the reference's
    X, y = make_hashed_classification(2000, n_features=2**10, nnz_per_row=10, random_state=0)
    clf = ServerlessSGDClassifier(
        optimizer="sgd",
        eta0=0.05,
        alpha=1e-3,
        average=average,
        shuffle=False,
        max_iter=3,
        tol=None,
        n_workers=1,
        random_state=0,
    ).fit(X, y)
    coef, intercept = _eager_averaged_sgd(
        X,
        y,
        eta=0.05,
        alpha=1e-3,
        batch_size=clf.batch_size,
        epochs=3,
        average_start=int(average),
    )
    np.testing.assert_allclose(clf.coef_.ravel(), coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(clf.intercept_, [intercept], rtol=1e-9)


def test_averaging_that_never_starts_leaves_the_model_and_partial_fit_continues_it():
    X, y = make_hashed_classification(2000, n_features=2**10, nnz_per_row=10, random_state=1)
    params = dict(shuffle=False, tol=None, n_workers=1, random_state=0)
    plain = ServerlessSGDClassifier(max_iter=2, **params).fit(X, y)
    late = ServerlessSGDClassifier(max_iter=2, average=10**9, **params).fit(X, y)
    np.testing.assert_array_equal(late.coef_, plain.coef_)
    # three calls of partial_fit are one fit of three epochs, average included
    whole = ServerlessSGDClassifier(max_iter=3, average=True, **params).fit(X, y)
    streamed = ServerlessSGDClassifier(average=True, **params)
    for _ in range(3):
        streamed.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_allclose(streamed.coef_, whole.coef_, rtol=1e-10, atol=1e-14)
    assert not np.allclose(whole.coef_, whole._last_iterate()[0])


@pytest.mark.parametrize("store", ["shm", "redis"])
def test_averaged_sgd_on_workers_learns_as_scikit_learns(binary, store, request):
    # in place on shared memory, and on pulled copies of rows added back to Redis
    X, y = binary
    store = request.getfixturevalue("redis_url") if store == "redis" else store
    ours = ServerlessSGDClassifier(
        average=True, executor="processes", store=store, max_iter=20, random_state=0
    )
    theirs = SGDClassifier(loss="log_loss", average=True, random_state=0)
    assert ours.fit(X, y).score(X, y) > theirs.fit(X, y).score(X, y) - 0.03
    assert ours.fit_report_["path"] == "workers"
    assert not np.allclose(ours.coef_, ours._last_iterate()[0])
