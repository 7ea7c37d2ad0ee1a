"""ServerlessGridSearchCV: scikit-learn's search, every fit at once on one capped pool."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier
from sklearn_cirrus.executors import ThreadExecutor

GRID = {"alpha": [1e-4, 1e-3, 1e-1], "eta0": [0.05, 0.2]}


def test_same_results_as_sklearn_grid_search_on_the_exact_path(binary_data):
    X, y = binary_data
    estimator = ServerlessSGDClassifier(n_workers=1, executor="sequential", random_state=0)
    ours = ServerlessGridSearchCV(estimator, GRID, cv=3, executor="sequential").fit(X, y)
    theirs = GridSearchCV(estimator, GRID, cv=3).fit(X, y)
    np.testing.assert_array_equal(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"]
    )
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.best_estimator_.coef_, theirs.best_estimator_.coef_)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_all_fits_share_a_pool_capped_at_max_workers(binary_data, executor):
    X, y = binary_data
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(n_workers=2, random_state=0),
        GRID,
        cv=3,
        executor=executor,
        max_workers=3,
    ).fit(X, y)
    # 18 fits of 2 workers each ran together, never more than 3 invocations at once
    assert 2 <= search.peak_workers_ <= 3
    assert search.best_score_ > 0.85 and len(search.cv_results_["params"]) == 6


def test_pipeline_grid_and_a_clean_refitted_model(binary_data):
    X, y = binary_data
    pipeline = make_pipeline(StandardScaler(), ServerlessSGDClassifier(random_state=0))
    search = ServerlessGridSearchCV(
        pipeline,
        {"serverlesssgdclassifier__alpha": [1e-4, 10.0]},
        cv=3,
        executor=ThreadExecutor(),
        max_workers=2,
    ).fit(X, y)
    assert search.best_params_ == {"serverlesssgdclassifier__alpha": 1e-4}
    # the user's estimator and the refitted one keep their own executor setting
    assert pipeline[-1].executor is None and search.best_estimator_[-1].executor is None
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_a_failing_candidate_follows_error_score(binary_data):
    X, y = binary_data
    grid = {"alpha": [1e-4], "worker_memory_mb": [None, 1]}  # 1 MB cannot hold a batch
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(random_state=0),
        grid,
        cv=2,
        executor="threads",
        error_score=np.nan,
    )
    with pytest.warns(FitFailedWarning, match="fits failed"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
