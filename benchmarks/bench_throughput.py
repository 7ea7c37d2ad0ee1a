"""Speed and quality on a large sparse problem, against one core of scikit-learn's SGD.

The problem (``sklearn_cirrus.datasets.make_hashed_classification``): 1,000,000 training
rows and 100,000 test rows, 2**20 hashed features, ~36 non-zeros a row with power-law
feature popularity, as hashed click logs are.

1. Training throughput: samples/s of ``SGDClassifier(loss="log_loss")`` (one core) and
   of ``ServerlessSGDClassifier`` on the processes executor with 1 and 2 workers (warm
   processes; "training" leaves out the driver's staging of the data).
2. Time to quality, for ``alpha`` 1e-4 and 1e-5: ``SGDClassifier``'s fit with its
   defaults gives the target test log-loss and the time to beat; ours (only ``alpha``
   set, 2 process workers, ``tol=None``) records its test log-loss after every epoch
   (the callback's own time left out) and the time it first reaches the target.
   Vowpal Wabbit (logistic loss, ``-b 20``, passes read from its cache file) is the
   reference line, when ``vowpalwabbit`` is installed.
3. Quality at the defaults: ours with only ``alpha`` set, stopping by itself; its final
   test log-loss next to ``SGDClassifier``'s, and how far any epoch's rose above the
   best one before it.

Run from the repository root: ``python benchmarks/bench_throughput.py [n_rows [alpha ...]]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _problems import hashed_split
from _table import machine, print_table
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.epoch_callbacks import EpochCallback

ALPHAS = (1e-4, 1e-5)
MAX_EPOCHS = 12
# Vowpal Wabbit's runs, fewest passes first, until one reaches the target loss
VW_PASSES = (1, 2, 4, 8)


class TestLossPerEpoch(EpochCallback):
    """Test log-loss and fit time (this callback's own left out) after every epoch."""

    def __init__(self, X_test, y_test):
        self.X_test, self.y_test = X_test, y_test
        self.curve: list[tuple[int, float, float]] = []

    def setup(self, estimator, context):
        self.started, self.own_seconds = time.perf_counter(), 0.0

    def on_epoch(self, fitted_estimator, X):
        now = time.perf_counter()
        loss = log_loss(self.y_test, fitted_estimator.predict_proba(self.X_test))
        self.curve.append((fitted_estimator.n_iter_, now - self.started - self.own_seconds, loss))
        self.own_seconds += time.perf_counter() - now
        return False


def sklearn_target(alpha, X_train, y_train, X_test, y_test):
    """``SGDClassifier(loss="log_loss")`` with its defaults at ``alpha``: the fitted model,
    its fit's seconds and its test log-loss (the target)."""
    reference = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
    seconds = timed_fit(reference, X_train, y_train)
    return reference, seconds, log_loss(y_test, reference.predict_proba(X_test))


def two_process_workers(alpha, max_epochs, **settings) -> ServerlessSGDClassifier:
    """Ours on 2 process workers at ``alpha`` for ``max_epochs`` epochs, ``tol=None``."""
    return ServerlessSGDClassifier(
        alpha=alpha,
        executor="processes",
        n_workers=2,
        max_iter=max_epochs,
        tol=None,
        random_state=0,
        **settings,
    )


def watched_fit(alpha, max_epochs, X_train, y_train, X_test, y_test, **settings):
    """Ours on 2 process workers, ``tol=None``: the fitted model and its watch (the test
    log-loss after every epoch)."""
    watch = TestLossPerEpoch(X_test, y_test)
    model = two_process_workers(alpha, max_epochs, **settings)
    model.set_callbacks(watch).fit(X_train, y_train)
    return model, watch


def timed_fit(model, X, y) -> float:
    started = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - started


def write_vw(path: Path, X, y) -> None:
    with open(path, "w") as f:
        for row in range(X.shape[0]):
            start, stop = X.indptr[row], X.indptr[row + 1]
            features = " ".join(
                f"{j}:{v:g}" for j, v in zip(X.indices[start:stop], X.data[start:stop], strict=True)
            )
            f.write(f"{1 if y[row] else -1} | {features}\n")


def vowpal_wabbit_line(X_train, y_train, X_test, y_test, target: float):
    """(passes, seconds, test log-loss, parsing seconds) of the fewest cached passes of
    ``VW_PASSES`` that reach ``target``, or of the most when none does."""
    try:
        from vowpalwabbit import Workspace
    except ImportError:
        return None
    folder = Path(tempfile.mkdtemp())
    train, test = folder / "train.vw", folder / "test.vw"
    write_vw(train, X_train, y_train)
    write_vw(test, X_test, y_test)
    common = f"--loss_function logistic -b 20 --holdout_off --quiet --cache_file {folder}/c"
    started = time.perf_counter()
    Workspace(f"-d {train} {common} --passes 1 -k").finish()  # parses the text, writes the cache
    parse_seconds = time.perf_counter() - started
    for passes in VW_PASSES:
        model = folder / "model"
        started = time.perf_counter()
        Workspace(f"-d {train} {common} --passes {passes} -f {model}").finish()
        seconds = time.perf_counter() - started
        predictions = folder / "predictions"
        Workspace(f"-i {model} -t -d {test} -p {predictions} --link logistic --quiet").finish()
        loss = log_loss(y_test, np.clip(np.loadtxt(predictions), 1e-15, 1 - 1e-15))
        if loss <= target:
            break
    return passes, seconds, loss, parse_seconds


def problem_from_argv():
    """``[n_rows [alpha ...]]`` from the command line: the hashed problem's (X_train,
    y_train, X_test, y_test) and the alphas; the machine printed, and the warm worker
    processes started once, as any later fit in a session finds them."""
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    alphas = [float(a) for a in sys.argv[2:]] or ALPHAS
    print(f"machine: {machine()}")
    X_train, y_train, X_test, y_test = hashed_split(n_train)
    ServerlessSGDClassifier(executor="processes", n_workers=2, max_iter=1).fit(X_test, y_test)
    return (X_train, y_train, X_test, y_test), alphas


def main() -> None:
    (X_train, y_train, X_test, y_test), alphas = problem_from_argv()
    n_train = X_train.shape[0]

    print("## Training throughput (2 epochs, tol=None)\n")
    reference = SGDClassifier(loss="log_loss", max_iter=2, tol=None, random_state=0)
    sklearn_rate = 2 * n_train / timed_fit(reference, X_train, y_train)
    rows, rate = [["SGDClassifier(loss='log_loss'), one core", sklearn_rate, "-"]], {}
    for n_workers in (1, 2):
        model = ServerlessSGDClassifier(
            executor="processes", n_workers=n_workers, max_iter=2, tol=None, random_state=0
        )
        timed_fit(model, X_train, y_train)
        report = model.fit_report_
        rate[n_workers] = report["samples"] / (report["wall_seconds"] - report["seconds_staging"])
        rows.append(
            [
                f"ServerlessSGDClassifier processes, {n_workers} workers",
                rate[n_workers],
                report["seconds_staging"],
            ]
        )
    print_table(["fit", "training samples/s", "staging (s)"], rows)
    print(
        f"\n1 worker / SGDClassifier: {rate[1] / sklearn_rate:.2f}x (target >= 1.5x); "
        f"2 workers / 1 worker: {rate[2] / rate[1]:.2f}x (target >= 1.8x)\n"
    )

    for alpha in alphas:
        print(f"## Time to SGDClassifier's test log-loss, alpha={alpha:g}\n")
        split = (X_train, y_train, X_test, y_test)
        reference, reference_seconds, target = sklearn_target(alpha, *split)
        _, watch = watched_fit(alpha, MAX_EPOCHS, *split)
        rows = [[f"SGDClassifier defaults ({reference.n_iter_} epochs)", reference_seconds, target]]
        rows += [
            [f"ours, 2 workers, epoch {epoch}", seconds, loss]
            for epoch, seconds, loss in watch.curve
        ]
        reached = next((seconds for _, seconds, loss in watch.curve if loss <= target), None)
        vw = vowpal_wabbit_line(X_train, y_train, X_test, y_test, target)
        if vw is not None:
            passes, seconds, loss, parse_seconds = vw
            rows.append(
                [
                    f"Vowpal Wabbit, {passes} cached passes (+{parse_seconds:.1f} s parsing)",
                    seconds,
                    loss,
                ]
            )
        print_table(["fit", "seconds", "test log-loss"], rows)
        losses = [loss for _, _, loss in watch.curve]
        rise = max(loss - min(losses[: i + 1]) for i, loss in enumerate(losses))
        print(
            f"\ntarget {target:.4f}; ours reaches it after {reached} s: "
            + (
                f"{reached / reference_seconds:.2f}x SGDClassifier's time (target <= 0.3x)"
                if reached
                else "not reached"
            )
            + f"; largest rise of test loss above its best so far: {rise:.4f}\n"
        )

        defaults = ServerlessSGDClassifier(
            alpha=alpha, executor="processes", n_workers=2, random_state=0
        )
        watch = TestLossPerEpoch(X_test, y_test)
        seconds = timed_fit(defaults.set_callbacks(watch), X_train, y_train)
        losses = [loss for _, _, loss in watch.curve]
        rise = max(loss - min(losses[: i + 1]) for i, loss in enumerate(losses))
        print(
            f"defaults with alpha={alpha:g}: {defaults.n_iter_} epochs, {seconds:.1f} s, final "
            f"test log-loss {losses[-1]:.4f} vs SGDClassifier {target:.4f} (difference "
            f"{losses[-1] - target:+.4f}, target within 0.002); largest rise above best "
            f"{rise:.4f} "
            f"(target <= 0.002)\n"
        )


if __name__ == "__main__":
    main()
