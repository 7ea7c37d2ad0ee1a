"""Which optimizer reaches a loss first: time to ``SGDClassifier``'s test log-loss.

The problem of ``bench_throughput.py`` (hashed click-log rows, 2**20 features, power-law
popularity). For each ``alpha``: ``SGDClassifier(loss="log_loss")`` with its defaults
gives the target test log-loss and the time to beat; then ``ServerlessSGDClassifier``
(2 process workers, ``tol=None``, ``MAX_EPOCHS`` epochs) with each optimizer and the
step-size schedules that suit it, its test log-loss after every epoch, training
samples/s and the first time it reaches the target. The default optimizer is the one
that reaches the target first.

Run from the repository root: ``python benchmarks/bench_optimizers.py [n_rows [alpha ...]]``.
"""

from __future__ import annotations

from _table import print_table
from bench_throughput import problem_from_argv, sklearn_target, watched_fit

MAX_EPOCHS = 8
CANDIDATES = {
    "adagrad (default), constant eta0=0.1": {},
    "sgd, optimal (scikit-learn's rule)": dict(optimizer="sgd", learning_rate="optimal"),
    "sgd, invscaling eta0=8": dict(optimizer="sgd", learning_rate="invscaling", eta0=8.0),
    "sgd, constant eta0=1": dict(optimizer="sgd", eta0=1.0),
    "momentum, constant eta0=0.1": dict(optimizer="momentum"),
}


def main() -> None:
    split, alphas = problem_from_argv()
    for alpha in alphas:
        reference, reference_seconds, target = sklearn_target(alpha, *split)
        rows = []
        for name, settings in CANDIDATES.items():
            model, watch = watched_fit(alpha, MAX_EPOCHS, *split, **settings)
            report = model.fit_report_
            rate = report["samples"] / (report["wall_seconds"] - report["seconds_staging"])
            reached = next((s for _, s, loss in watch.curve if loss <= target), None)
            rows.append(
                [
                    name,
                    f"{rate:,.0f}",
                    watch.curve[0][2],
                    min(loss for _, _, loss in watch.curve),
                    "not reached" if reached is None else f"{reached / reference_seconds:.2f}x",
                ]
            )
        print(
            f"\n## alpha={alpha:g}: SGDClassifier {reference_seconds:.1f} s "
            f"({reference.n_iter_} epochs) to test log-loss {target:.4f}\n"
        )
        headers = ["optimizer", "samples/s", "epoch 1 loss", f"best of {MAX_EPOCHS}", "time to it"]
        print_table(headers, rows)


if __name__ == "__main__":
    main()
