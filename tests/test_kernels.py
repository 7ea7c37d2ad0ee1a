"""The linear kernel's losses match scikit-learn's and its gradients match finite differences."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import _sgd_fast

from sklearn_cirrus.kernels import (
    CLASSIFICATION_LOSSES,
    REGRESSION_LOSSES,
    Batch,
    LinearKernel,
    RowIndexer,
)

EPSILON = 0.3
# scikit-learn's own implementations of each loss, where they are public to Python
SKLEARN_LOSSES = {
    "hinge": _sgd_fast.Hinge(1.0),
    "perceptron": _sgd_fast.Hinge(0.0),
    "squared_hinge": _sgd_fast.SquaredHinge(1.0),
    "modified_huber": _sgd_fast.ModifiedHuber(),
    "epsilon_insensitive": _sgd_fast.EpsilonInsensitive(EPSILON),
    "squared_epsilon_insensitive": _sgd_fast.SquaredEpsilonInsensitive(EPSILON),
}


@pytest.mark.parametrize("name", sorted(SKLEARN_LOSSES))
def test_loss_and_derivative_match_sklearn(name):
    reference = SKLEARN_LOSSES[name]
    p = np.linspace(-3, 3, 61)
    for y in (-1.0, 1.0, 0.4):
        loss, dloss = CLASSIFICATION_LOSSES[name](p, np.full_like(p, y), EPSILON)
        np.testing.assert_allclose(loss, [reference.py_loss(pi, y) for pi in p], atol=1e-12)
        np.testing.assert_allclose(dloss, [reference.py_dloss(pi, y) for pi in p], atol=1e-12)


def test_log_loss_matches_sklearn_log_loss():
    from sklearn.metrics import log_loss

    p = np.linspace(-30, 30, 101)
    y = np.where(np.arange(101) % 2 == 0, 1.0, -1.0)
    loss, _ = CLASSIFICATION_LOSSES["log_loss"](p, y, 0.1)
    expected = log_loss(y > 0, 1 / (1 + np.exp(-p)), normalize=False)
    assert np.isclose(loss.sum(), expected, rtol=1e-6)


def test_huber_and_squared_error_match_closed_forms():
    r = np.linspace(-2, 2, 41)
    loss, dloss = REGRESSION_LOSSES["huber"](r, np.zeros_like(r), EPSILON)
    small = np.abs(r) <= EPSILON
    np.testing.assert_allclose(loss[small], 0.5 * r[small] ** 2)
    np.testing.assert_allclose(loss[~small], EPSILON * np.abs(r[~small]) - 0.5 * EPSILON**2)
    loss, dloss = REGRESSION_LOSSES["squared_error"](r, np.zeros_like(r), EPSILON)
    np.testing.assert_allclose(loss, 0.5 * r**2)
    np.testing.assert_allclose(dloss, r)


def _objective(kernel, params, batch):
    """Mean weighted loss plus the penalty: what loss_grad's gradient is the gradient of."""
    loss_sum, _ = kernel.loss_grad({"model": params}, batch)
    if kernel.penalty is None:
        return loss_sum / batch.n_samples
    coef = params[:-1]
    l1_ratio = {"l2": 0.0, "l1": 1.0}.get(kernel.penalty, kernel.l1_ratio)
    penalty = kernel.alpha * (
        (1 - l1_ratio) * 0.5 * (coef**2).sum() + l1_ratio * np.abs(coef).sum()
    )
    return loss_sum / batch.n_samples + penalty


def _batch(rng, n_samples, n_features, n_outputs, classification):
    X = sp.random(n_samples, n_features, density=0.4, format="csr", random_state=rng)
    if classification:
        y = rng.randint(0, max(n_outputs, 2), n_samples)
    else:
        y = rng.normal(size=n_samples)
    return Batch(X, y, rng.uniform(0.5, 2.0, n_samples))


@pytest.mark.parametrize(
    "loss, classification, n_outputs",
    [(name, True, k) for name in CLASSIFICATION_LOSSES for k in (1, 3)]
    + [(name, False, 1) for name in REGRESSION_LOSSES],
)
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet", None])
def test_gradient_matches_finite_differences(loss, classification, n_outputs, penalty, rng):
    n_features = 6
    kernel = LinearKernel(
        loss,
        n_features,
        n_outputs,
        classification,
        penalty=penalty,
        alpha=0.05,
        l1_ratio=0.3,
        epsilon=EPSILON,
        positive_weight=(1.5,) * n_outputs,
        negative_weight=(0.7,) * n_outputs,
    )
    batch = _batch(rng, 20, n_features, n_outputs, classification)
    params = rng.normal(scale=0.7, size=kernel.shape)
    _, grads = kernel.loss_grad({"model": params}, batch)
    grad = grads["model"]
    step = 1e-6
    numeric = np.zeros_like(params)
    for index in np.ndindex(params.shape):
        shifted = params.copy()
        shifted[index] += step
        up = _objective(kernel, shifted, batch)
        shifted[index] -= 2 * step
        numeric[index] = (up - _objective(kernel, shifted, batch)) / (2 * step)
    # kinks of hinge-like losses are measure-zero; random parameters avoid them
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_intercept_gradient_is_zero_without_intercept(rng):
    kernel = LinearKernel("log_loss", 5, fit_intercept=False)
    params = {"model": rng.normal(size=kernel.shape)}
    _, grads = kernel.loss_grad(params, _batch(rng, 10, 5, 1, True))
    assert np.all(grads["model"][-1] == 0)


def test_row_indexer_renumbers_columns_and_keeps_products(rng):
    X = sp.random(8, 50, density=0.05, format="csr", random_state=rng)
    rows, compact = RowIndexer(50)(X)
    assert rows[-1] == 50 and rows.size - 1 == np.unique(X.indices).size
    assert set(rows[:-1]) == set(X.indices)
    assert compact.shape == (8, rows.size - 1)
    params = rng.normal(size=(51, 2))
    np.testing.assert_allclose(compact @ params[rows[:-1]], X @ params[:-1])


def test_row_indexer_reuses_its_scratch_across_batches(rng):
    indexer = RowIndexer(40)
    params = rng.normal(size=(41, 1))
    for _ in range(5):
        X = sp.random(6, 40, density=0.2, format="csr", random_state=rng)
        rows, compact = indexer(X)
        np.testing.assert_allclose(compact @ params[rows[:-1]], X @ params[:-1])


def test_row_indexer_of_dense_batch_is_every_row(rng):
    X = rng.normal(size=(4, 3))
    rows, same = RowIndexer(3)(X)
    assert np.array_equal(rows, np.arange(4)) and same is X


def test_init_and_split_params_round_trip(rng):
    kernel = LinearKernel("hinge", 4, n_outputs=3)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    back_coef, back_intercept = kernel.split_params(kernel.init_params(coef, intercept))
    np.testing.assert_array_equal(back_coef, coef)
    np.testing.assert_array_equal(back_intercept, intercept)


def test_row_planner_pulls_touched_rows_of_the_model_key(rng):
    kernel = LinearKernel("log_loss", 30)
    X = sp.random(5, 30, density=0.1, format="csr", random_state=rng)
    rows, local = kernel.row_planner()(Batch(X, np.ones(5), np.ones(5)))
    assert list(rows) == ["model"] and local.X.shape == (5, rows["model"].size - 1)
