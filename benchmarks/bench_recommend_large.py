"""ServerlessMatrixFactorization's defaults on a ratings set ten times MovieLens latest-small.

A generated problem with a known low-rank truth (``sklearn_cirrus.datasets.make_ratings``:
1,000,000 ratings, power-law user activity and item popularity), random 80/20 split (seed
0): test RMSE and fit time of ours with its defaults (processes, 2 workers) next to
Surprise's ``SVD`` with its defaults and tuned (n_factors=50, n_epochs=40, lr_all=0.007,
reg_all=0.05), in the same run. The defaults were chosen on latest-small; this checks that
they carry over to a larger set.

Run from the repository root: ``python benchmarks/bench_recommend_large.py [n_ratings]``
(needs ``pip install scikit-surprise``).
"""

from __future__ import annotations

import sys

from _table import machine, print_table
from bench_recommend import fit, rmse, surprise_fits
from sklearn.model_selection import train_test_split

from sklearn_cirrus.datasets import make_ratings


def main() -> None:
    n_ratings = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    X, y = make_ratings(n_ratings)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    print(f"machine: {machine()}")
    print(f"data: make_ratings({n_ratings}), {len(y_train)} train / {len(y_test)} test\n")
    fit(X_train[:5000], y_train[:5000], executor="processes", n_workers=2, max_iter=1)  # warm
    rows = []
    model, seconds = fit(X_train, y_train, executor="processes", n_workers=2)
    ours = rmse(model.predict(X_test), y_test)
    rows.append(["ServerlessMatrixFactorization defaults", ours, f"{seconds:.2f}", model.n_iter_])
    surprise = surprise_fits(X_train, y_train, X_test, y_test)
    for name, (score, fit_seconds) in surprise.items():
        rows.append([f"Surprise {name}", score, f"{fit_seconds:.2f}", "-"])
    print_table(["model", "test RMSE", "fit (s)", "epochs"], rows)
    best, best_seconds = min(surprise.values())
    print(
        f"\nours - Surprise's best: {ours - best:+.4f} RMSE (target <= 0); time "
        f"{seconds:.2f} s vs {best_seconds:.2f} s: {seconds / best_seconds:.2f}x (target <= 0.3x)"
    )


if __name__ == "__main__":
    main()
