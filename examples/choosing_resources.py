"""
Choosing resources: a plan before the fit
=========================================

Ask what a fit would take before running it, then let the estimator choose::

    python examples/choosing_resources.py [n_rows] [plan.png]

On generated hashed click logs (2**20 features, power-law popularity; 200,000 rows by
default), ``plan()`` probes the real thing (one worker, a few thousand rows) and predicts
every configuration's seconds, worker-seconds and dollars, on this machine and on AWS
Lambda's price table. Each configuration of this machine then runs, to put what ran next
to what was predicted; last, ``n_workers="auto"`` runs the plan's fastest row and says what
it chose. The figure (saved into plan.png when it is named) draws predicted against
measured.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sklearn_cirrus import ServerlessSGDClassifier  # noqa: E402
from sklearn_cirrus.datasets import make_hashed_classification  # noqa: E402
from sklearn_cirrus.platforms import AWS_LAMBDA  # noqa: E402

COLUMNS = ["n_workers", "worker_memory_mb", "predicted_seconds", "predicted_cost_usd"]


def main(n_rows=200_000, figure=None):
    X, y = make_hashed_classification(n_rows, random_state=0)
    model = ServerlessSGDClassifier(executor="processes", max_iter=5, tol=None, random_state=0)
    plan = model.plan(X, y, n_workers=(1, 2, 4, 8))
    print("This machine:")
    print(plan[COLUMNS + ["predicted_worker_seconds", "fits_in_memory"]].to_string(index=False))
    print(f"measured: {plan['measured'][0]}\nassumed: {plan['assumed'][0]}\n")
    lambda_plan = model.plan(X, y, n_workers=(8, 32), platform=AWS_LAMBDA)
    print("AWS Lambda (its memory sizes buy CPU):")
    print(lambda_plan[COLUMNS + ["fits_in_memory"]].to_string(index=False))

    measured = []
    for workers in plan["n_workers"]:
        model.set_params(n_workers=int(workers)).fit(X, y)
        measured.append(model.fit_report_["wall_seconds"])
    print("\nworkers  predicted s  measured s")
    for workers, predicted, took in zip(
        plan["n_workers"], plan["predicted_seconds"], measured, strict=True
    ):
        print(f"{workers:7d}  {predicted:11.2f}  {took:10.2f}")

    auto = ServerlessSGDClassifier(
        executor="processes", n_workers="auto", worker_memory_mb="auto", max_iter=5, tol=None
    ).fit(X, y)
    chosen = auto.fit_report_["resources"]
    print(
        f"\nn_workers='auto' chose {chosen['n_workers']} workers of "
        f"{chosen['worker_memory_mb']} MB: predicted {chosen['predicted_seconds']:.2f} s, "
        f"took {chosen['seconds']:.2f} s (probe {chosen['probe_seconds']:.2f} s included)"
    )

    _, axes = plt.subplots(figsize=(6, 3.5))
    positions = np.arange(len(plan))
    axes.bar(positions - 0.2, plan["predicted_seconds"], 0.4, label="predicted by plan()")
    axes.bar(positions + 0.2, measured, 0.4, label="measured")
    axes.set_xticks(positions, [f"x{w}" for w in plan["n_workers"]])
    axes.set_xlabel("process workers (this machine)")
    axes.set_ylabel("seconds for 5 epochs")
    axes.legend()
    plt.tight_layout()
    if figure:
        plt.savefig(figure)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else 200_000,
        sys.argv[2] if len(sys.argv) > 2 else None,
    )
