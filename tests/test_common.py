"""scikit-learn's own estimator checks, on the default (asynchronous) and exact settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cirrus import ServerlessSGDClassifier, ServerlessSGDRegressor

ESTIMATORS = [
    ServerlessSGDClassifier(random_state=0),
    ServerlessSGDRegressor(random_state=0),
    ServerlessSGDClassifier(n_workers=1, executor="sequential", random_state=0),
    ServerlessSGDRegressor(n_workers=1, executor="sequential", random_state=0),
]

_WEIGHTS = (
    "minibatch SGD sees a row of weight 2 in one minibatch and its two copies in two, "
    "so the fits differ, as they do for scikit-learn's own SGD estimators"
)
_ASYNC = (
    "two asynchronous workers interleave their updates differently on every fit, so "
    "two fits agree to about 1e-4, not to the 1e-7 this check asks"
)


def expected_failed_checks(estimator):
    failures = {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS,
    }
    if estimator.n_workers > 1:
        failures.update(
            check_fit_idempotent=_ASYNC,
            check_supervised_y_2d=_ASYNC,
            check_regressors_int=_ASYNC,
            check_class_weight_balanced_linear_classifier=_ASYNC,
        )
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
