"""What is particular to Lithops: each invocation is one function call of its backend."""

import pytest

from sklearn_cirrus import ServerlessSGDClassifier

# long, with real servers and clusters: .ci/run's second step (-m backends)
pytestmark = pytest.mark.backends


def test_every_invocation_is_a_lithops_call(lithops_executor, binary_data):
    X, y = binary_data
    clf = ServerlessSGDClassifier(executor=lithops_executor, max_iter=3, tol=None, random_state=0)
    clf.fit(X, y)
    futures = lithops_executor._lithops().futures
    assert len(futures) == clf.fit_report_["invocations"] >= 6
