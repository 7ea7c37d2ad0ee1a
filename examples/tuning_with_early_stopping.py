"""
Tuning a recommender with early stopping
========================================

Tune a recommender on MovieLens: every fit at once, unpromising candidates stopped early::

    python examples/tuning_with_early_stopping.py [ratings.csv.gz] [curves.png]

Without a ratings file (or with ""), MovieLens latest-small is fetched from GroupLens
once (``fetch_movielens``).

Prints the candidates with where their fits stopped and what they cost, and draws the loss
curves against time and cost (stopped candidates dashed), saved into curves.png when it is
named.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from sklearn_cirrus import (  # noqa: E402
    ServerlessGridSearchCV,
    ServerlessMatrixFactorization,
    fetch_movielens,
    load_movielens,
)


def main(ratings=None, figure=None):
    X, y = load_movielens(ratings) if ratings else fetch_movielens()
    search = ServerlessGridSearchCV(
        ServerlessMatrixFactorization(random_state=0),
        {"n_components": [20, 50], "alpha": [0.03, 0.12, 0.5]},
        scoring="neg_root_mean_squared_error",
        # the ratings are sorted by user: shuffle, or a fold holds users never seen in training
        cv=KFold(3, shuffle=True, random_state=0),
        executor="processes",
        max_workers=2,
        early_stopping="median",
    ).fit(X, y)
    results = search.cv_results_
    for i, params in enumerate(results["params"]):
        epochs = [int(results[f"split{k}_stop_epoch"][i]) for k in range(search.n_splits_)]
        print(
            f"{params}: RMSE {-results['mean_test_score'][i]:.4f}, epochs {epochs}, "
            f"stopped {results['stopped_by'][i] or 'no'}, "
            f"{results['worker_seconds'][i]:.1f} worker-seconds, "
            f"${results['cost_usd'][i]:.6f}"
        )
    print(f"best: {search.best_params_}, RMSE {-search.best_score_:.4f}")
    print(f"worker-seconds in all: {results['worker_seconds'].sum():.1f}")
    search.plot_loss_curves()
    if figure:
        plt.savefig(figure, dpi=100, bbox_inches="tight")
        print(f"loss curves drawn in {figure}")


if __name__ == "__main__":
    main(*sys.argv[1:])
