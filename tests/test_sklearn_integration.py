"""The estimators drop into Pipeline and scikit-learn's GridSearchCV unchanged."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cirrus import ServerlessSGDClassifier, ServerlessSGDRegressor


@pytest.mark.parametrize("executor", [None, "processes"])
def test_grid_search_in_parallel_over_a_pipeline(executor):
    X, y = make_classification(n_samples=1500, n_features=20, random_state=0)
    X = X * 50 + 10  # badly scaled on purpose: the scaler in the pipeline must matter
    pipeline = make_pipeline(
        StandardScaler(), ServerlessSGDClassifier(executor=executor, random_state=0)
    )
    search = GridSearchCV(
        pipeline,
        {"serverlesssgdclassifier__alpha": [1e-4, 10.0], "serverlesssgdclassifier__eta0": [0.1]},
        cv=3,
        n_jobs=2,
    )
    search.fit(X, y)
    assert search.best_params_["serverlesssgdclassifier__alpha"] == 1e-4
    assert search.best_score_ > 0.85
    assert search.best_estimator_[-1].fit_report_["samples"] > 0
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_cross_val_score_of_regressor():
    X, y = make_regression(n_samples=1200, n_features=8, noise=1.0, random_state=0)
    scores = cross_val_score(ServerlessSGDRegressor(eta0=1.0, random_state=0), X, y / y.std(), cv=3)
    assert scores.min() > 0.98


def test_clone_keeps_parameters_and_no_fitted_state():
    clf = ServerlessSGDClassifier(n_workers=3, executor="processes", worker_memory_mb=2048)
    X, y = make_classification(n_samples=300, random_state=0)
    clf.fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "coef_")
