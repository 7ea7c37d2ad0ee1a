"""Time to ``SGDClassifier``'s test log-loss, as a user sees it: whole fits, medians.

The problem of ``bench_throughput.py`` (hashed click-log rows, 2**20 features, power-law
popularity). For each ``alpha``, ``ROUNDS`` rounds, each of them:
``SGDClassifier(loss="log_loss")`` with its defaults (its fit's seconds and test log-loss:
the target), then ``ServerlessSGDClassifier`` at the defaults on 2 process workers with
``tol=None`` and ``max_iter`` of 1 to ``MAX_EPOCHS``: each a whole fit, timed from ``fit``
called to ``fit`` returned (staging, the pool, reading the model back), with no callback
in it. Ours reaches the target at the first of those fits whose test log-loss is at or
below it. A watched fit (``bench_optimizers.py``) leaves its callback's seconds out while
its workers train on, so its times run early; these do not.

Prints each round and the median, over the rounds, of our time to the target over
``SGDClassifier``'s time in the same round (a round that never reaches it counts as the
slowest).

Run from the repository root: ``python benchmarks/bench_time_to_loss.py [n_rows [alpha ...]]``.
"""

from __future__ import annotations

import math
import statistics

from _table import print_table
from bench_throughput import problem_from_argv, sklearn_target, timed_fit, two_process_workers
from sklearn.metrics import log_loss

ROUNDS = 5
MAX_EPOCHS = 4


def our_fit(alpha, epochs, X_train, y_train, X_test, y_test) -> tuple[float, float]:
    """Seconds and test log-loss of a whole fit of ``epochs`` epochs at the defaults."""
    model = two_process_workers(alpha, epochs)
    seconds = timed_fit(model, X_train, y_train)
    return seconds, log_loss(y_test, model.predict_proba(X_test))


def main() -> None:
    split, alphas = problem_from_argv()
    for alpha in alphas:
        rows, ratios = [], []
        for round_ in range(1, ROUNDS + 1):
            _, reference_seconds, target = sklearn_target(alpha, *split)
            fits = [our_fit(alpha, epochs, *split) for epochs in range(1, MAX_EPOCHS + 1)]
            reached = next(
                ((epochs, s) for epochs, (s, loss) in enumerate(fits, 1) if loss <= target), None
            )
            # a round that never reaches it counts as the slowest
            ratios.append(math.inf if reached is None else reached[1] / reference_seconds)
            rows.append(
                [
                    round_,
                    f"{reference_seconds:.2f} s, {target:.4f}",
                    *(f"{s:.2f} s, {loss:.4f}" for s, loss in fits),
                    "not reached"
                    if reached is None
                    else f"{reached[1] / reference_seconds:.2f}x (epoch {reached[0]})",
                ]
            )
        print(f"\n## alpha={alpha:g}\n")
        headers = ["round", "SGDClassifier"]
        headers += [f"ours, max_iter={e}" for e in range(1, MAX_EPOCHS + 1)]
        print_table([*headers, "time to its loss"], rows)
        print(
            f"\nmedian time to SGDClassifier's test log-loss: {statistics.median(ratios):.2f}x"
            f" its fit time ({min(ratios):.2f}-{max(ratios):.2f}x; inf: not reached in"
            f" {MAX_EPOCHS} epochs; target <= 0.3x)"
        )


if __name__ == "__main__":
    main()
