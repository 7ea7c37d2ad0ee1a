"""
One estimator on every executor
===============================

Train on LIBSVM a9a with each executor, changing only ``executor=``::

    python examples/a9a_on_every_executor.py [path/to/folder]

Without a folder, a9a is fetched from the LIBSVM page once (``fetch_libsvm``); a folder
must hold ``a9a.libsvm.gz`` and ``a9a_t.libsvm.gz``.
"""

import sys
from pathlib import Path

from sklearn.datasets import load_svmlight_file
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier, fetch_libsvm


def main():
    if len(sys.argv) > 1:
        folder = Path(sys.argv[1])
        X, y = load_svmlight_file(str(folder / "a9a.libsvm.gz"), n_features=123)
        X_test, y_test = load_svmlight_file(str(folder / "a9a_t.libsvm.gz"), n_features=123)
    else:
        (X, y), (X_test, y_test) = fetch_libsvm("a9a"), fetch_libsvm("a9a", "test")
    for executor in ("sequential", "threads", "processes"):
        clf = ServerlessSGDClassifier(executor=executor, n_workers=2, random_state=0)
        clf.fit(X, y)
        report = clf.fit_report_
        print(
            f"{executor:<10} accuracy {clf.score(X_test, y_test):.4f}  "
            f"log-loss {log_loss(y_test, clf.predict_proba(X_test)):.4f}  "
            f"epochs {clf.n_iter_}  invocations {report['invocations']}  "
            f"wall {report['wall_seconds']:.2f} s  ~${report['estimated_cost_usd']:.6f}"
        )


if __name__ == "__main__":  # required: the processes executor starts worker processes
    main()
