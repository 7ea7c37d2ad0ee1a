"""Quality at every epoch and speed at the defaults on Redis, next to shared memory and
one core of scikit-learn's SGD, on the hashed problem of the speed benchmarks.

``ServerlessSGDClassifier(executor="processes", n_workers=2, random_state=0)`` at its
defaults (it stops by itself), on shared memory and on Redis (loopback, started by this
script): its test log-loss after every epoch, the largest rise of that loss above the
best before it, and training samples/s (the driver's staging left out) with its ratio to
``SGDClassifier(loss="log_loss")``'s at its defaults in the same run. Targets: the final
test loss within 0.002 of shared memory's, no rise above 0.002.

Run from the repository root: ``python benchmarks/bench_remote_epochs.py [n_rows]``.
"""

from __future__ import annotations

import sys

from _problems import hashed_split
from _servers import local_redis
from _table import machine, print_table
from bench_throughput import TestLossPerEpoch, timed_fit
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier


def main() -> None:
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"machine: {machine()}")
    X_train, y_train, X_test, y_test = hashed_split(n_train)
    reference = SGDClassifier(loss="log_loss", random_state=0)
    seconds = timed_fit(reference, X_train, y_train)
    sklearn_rate = reference.n_iter_ * n_train / seconds
    sklearn_loss = log_loss(y_test, reference.predict_proba(X_test))
    ServerlessSGDClassifier(executor="processes", n_workers=2, max_iter=1).fit(X_test, y_test)
    rows = [
        [
            f"SGDClassifier, one core ({reference.n_iter_} epochs)",
            "-",
            sklearn_loss,
            "-",
            sklearn_rate,
            1.0,
        ]
    ]
    with local_redis() as url:
        for name, store in (("shared memory", "shm"), ("Redis, loopback", url)):
            watch = TestLossPerEpoch(X_test, y_test)
            model = ServerlessSGDClassifier(
                executor="processes", n_workers=2, random_state=0, store=store
            ).set_callbacks(watch)
            model.fit(X_train, y_train)
            report = model.fit_report_
            rate = report["samples"] / (report["wall_seconds"] - report["seconds_staging"])
            losses = [loss for _, _, loss in watch.curve]
            rise = max(loss - min(losses[: i + 1]) for i, loss in enumerate(losses))
            curve = " ".join(f"{loss:.4f}" for loss in losses)
            rows.append(
                [
                    f"{name} ({model.n_iter_} epochs)",
                    curve,
                    losses[-1],
                    rise,
                    rate,
                    rate / sklearn_rate,
                ]
            )
    print_table(
        [
            "fit",
            "test log-loss after each epoch",
            "final",
            "largest rise",
            "training samples/s",
            "x SGDClassifier",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
