"""Our estimators run scikit-learn's fit callbacks at every epoch, and obey their stop."""

import numpy as np
import pytest
from sklearn.callback import ScoringMonitor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cirrus import (
    ServerlessMatrixFactorization,
    ServerlessSGDClassifier,
    ServerlessSGDRegressor,
)
from sklearn_cirrus.epoch_callbacks import EpochCallback


class StopAt(EpochCallback):
    """Record every epoch's model; ask to stop at epoch ``stop_at``."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.epochs = []

    def on_epoch(self, fitted_estimator, X):
        self.epochs.append((fitted_estimator.n_iter_, fitted_estimator.predict(X[:5])))
        return fitted_estimator.n_iter_ == self.stop_at


class Propagated(StopAt):
    max_propagation_depth = None


def toy_ratings():
    rng = np.random.RandomState(0)
    users, items = rng.randint(0, 40, 2000), rng.randint(0, 30, 2000)
    return np.column_stack([users, items]), rng.uniform(1, 5, 2000)


@pytest.mark.parametrize(
    "make_estimator, data",
    [
        (lambda: ServerlessSGDClassifier(tol=None, max_iter=8), "classification"),
        (lambda: ServerlessSGDRegressor(tol=None, max_iter=8), "regression"),
        (lambda: ServerlessMatrixFactorization(n_components=4, max_iter=8), "ratings"),
    ],
)
def test_a_callback_sees_every_epoch_and_stops_the_fit(make_estimator, data, binary_data):
    if data == "ratings":
        X, y = toy_ratings()
    else:
        X, y = binary_data
        y = y if data == "classification" else X[:, 0] * 2.0
    watch = StopAt(stop_at=3)
    model = make_estimator().set_params(random_state=0, n_workers=1)
    model.set_callbacks(watch).fit(X, y)
    # epochs 1, 2, 3 seen with a model that predicts; the fit stopped at the third
    assert [epoch for epoch, _ in watch.epochs] == [1, 2, 3]
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert all(len(predicted) == 5 for _, predicted in watch.epochs)


def test_without_callbacks_the_fit_is_unchanged(binary_data):
    X, y = binary_data
    exact = {"n_workers": 1, "executor": "sequential", "random_state": 0, "max_iter": 5}
    plain = ServerlessSGDClassifier(**exact).fit(X, y)
    watched = ServerlessSGDClassifier(**exact).set_callbacks(StopAt()).fit(X, y)
    np.testing.assert_array_equal(plain.coef_, watched.coef_)


def test_scikit_learn_scoring_monitor_logs_each_epoch(binary_data):
    X, y = binary_data
    monitor = ScoringMonitor(scoring="accuracy")
    model = ServerlessSGDClassifier(tol=None, max_iter=4, random_state=0)
    model.set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs()
    epochs = [row for row in log.data if row["task_name"] == "epoch"]
    assert len(epochs) == 4 and all(0.5 < row["accuracy"] <= 1 for row in epochs)


def test_callbacks_reach_the_model_inside_a_pipeline(binary_data):
    X, y = binary_data
    watch = Propagated(stop_at=2)
    pipeline = make_pipeline(StandardScaler(), ServerlessSGDClassifier(tol=None, max_iter=6))
    pipeline.set_callbacks(watch).fit(X, y)
    assert pipeline[-1].n_iter_ == 2 and [epoch for epoch, _ in watch.epochs] == [1, 2]
