"""Test quality on LIBSVM a9a and w8a next to scikit-learn, on every executor.

Run from the repository root: ``python benchmarks/bench_quality.py``. The datasets are read
from ``../shared/datasets`` (or the folder given as the first argument).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from _table import machine, print_table
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, average_precision_score, log_loss
from sklearn.model_selection import train_test_split

from sklearn_cirrus import ServerlessSGDClassifier

EXECUTORS = ["sequential", "threads", "processes"]
WORKERS = [1, 2, 4]


def load(path: Path, n_features: int):
    X, y = load_svmlight_file(str(path), n_features=n_features)
    # scikit-learn's SGDClassifier refuses the int64 indices load_svmlight_file returns
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    return X, (y > 0).astype(int)


def timed_fit(model, X, y):
    started = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - started


def a9a(folder: Path) -> None:
    X, y = load(folder / "a9a.libsvm.gz", 123)
    X_test, y_test = load(folder / "a9a_t.libsvm.gz", 123)
    rows = []

    def add(name, model, seconds):
        proba = model.predict_proba(X_test)
        accuracy = accuracy_score(y_test, model.predict(X_test))
        rows.append([name, accuracy, log_loss(y_test, proba), f"{seconds:.2f}"])
        return accuracy, log_loss(y_test, proba)

    worst = (1.0, 0.0)
    for executor in EXECUTORS:
        for n_workers in WORKERS:
            model = ServerlessSGDClassifier(executor=executor, n_workers=n_workers, random_state=0)
            accuracy, loss = add(
                f"ServerlessSGDClassifier {executor}, {n_workers} workers", *timed_fit(model, X, y)
            )
            worst = (min(worst[0], accuracy), max(worst[1], loss))
    add(
        "sklearn SGDClassifier(log_loss)",
        *timed_fit(SGDClassifier(loss="log_loss", random_state=0), X, y),
    )
    add("sklearn LogisticRegression", *timed_fit(LogisticRegression(max_iter=1000), X, y))
    print("\n### a9a (train 32,561 rows, test 16,281; defaults)\n")
    print_table(["model", "test accuracy", "test log-loss", "fit (s)"], rows)
    print(
        f"\nworst over executors and worker counts: accuracy {worst[0]:.4f} (target >= 0.845), "
        f"log-loss {worst[1]:.4f} (target <= 0.330)"
    )


def w8a(folder: Path) -> None:
    X, y = load(folder / "w8a.libsvm.gz", 300)
    X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)

    def scores(model):
        proba = model.predict_proba(X_test)[:, 1]
        return log_loss(y_test, proba), average_precision_score(y_test, proba)

    reference, reference_seconds = timed_fit(SGDClassifier(loss="log_loss", random_state=0), X, y)
    ref_loss, ref_ap = scores(reference)
    rows = [
        [
            "sklearn SGDClassifier(log_loss)",
            ref_loss,
            ref_ap,
            "1.000",
            "1.000",
            f"{reference_seconds:.2f}",
        ]
    ]
    for executor in EXECUTORS:
        for n_workers in (1, 2):
            model, seconds = timed_fit(
                ServerlessSGDClassifier(executor=executor, n_workers=n_workers, random_state=0),
                X,
                y,
            )
            loss, ap = scores(model)
            rows.append(
                [
                    f"ServerlessSGDClassifier {executor}, {n_workers} workers",
                    loss,
                    ap,
                    f"{loss / ref_loss:.3f}",
                    f"{ap / ref_ap:.3f}",
                    f"{seconds:.2f}",
                ]
            )
    print("\n### w8a (stratified 80/20 split, seed 0; defaults)\n")
    print_table(
        ["model", "test log-loss", "average precision", "log-loss ratio", "AP ratio", "fit (s)"],
        rows,
    )
    print("\ntarget: log-loss ratio <= 1.02 and AP ratio >= 0.98 against SGDClassifier")


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    print(f"machine: {machine()}")
    a9a(folder)
    w8a(folder)


if __name__ == "__main__":
    main()
