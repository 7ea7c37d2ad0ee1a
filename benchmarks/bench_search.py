"""Hyperparameter search: ServerlessGridSearchCV next to the alternatives, with early stopping.

a9a (accuracy): 12 candidates (alpha x eta0 x optimizer) x 3 folds. In the same run:
``ServerlessGridSearchCV`` without early stopping, with ``"median"`` and with
``"halving"`` (every fit at once on one pool of process workers, at most 2 in flight:
this machine has 2 cores; the processes are started once before timing, as the first
fit of a session would), ``GridSearchCV(ServerlessSGDClassifier(), n_jobs=2)`` and
``GridSearchCV(SGDClassifier(loss="log_loss"), n_jobs=2)`` over alpha x eta0 x
learning_rate.

MovieLens latest-small (RMSE): ``ServerlessMatrixFactorization`` over n_components x
alpha (12 candidates x 3 folds) the same ways, ``GridSearchCV(ServerlessMatrixFactorization(),
n_jobs=2)``, and Surprise's own ``GridSearchCV(SVD)`` over n_factors x reg_all (needs
``pip install -e ".[benchmark]"``).

Hashed text: ``make_pipeline(HashingVectorizer(n_features=2**18), ServerlessSGDClassifier())``
over alpha x eta0 (6 candidates x 3 folds) on generated documents (Zipf word frequencies),
next to scikit-learn's ``GridSearchCV(n_jobs=2)`` of the same pipeline with
``SGDClassifier(loss="log_loss")``.

Targets: the same best parameters as the scikit-learn search of the same estimator, or a
best score within 0.002; with ``early_stopping="median"``, at least 30% fewer
worker-seconds than without, with the best score within 0.002. Wall time (medians of the
runs): a9a without early stopping <= 1.0x ``GridSearchCV(ServerlessSGDClassifier(),
n_jobs=2)``, with ``"halving"`` <= 1.0x ``HalvingGridSearchCV(SGDClassifier(log_loss),
n_jobs=2)`` at a best CV score within 0.002; the hashed-text search <= 1.5x scikit-learn's.
Asynchronous fits differ from run to run and the machine is shared: every search, ours and
the baselines, runs 3 times, alternated, and the ratios compare medians.

Run from the repository root: ``python benchmarks/bench_search.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from _table import machine, print_table
from bench_quality import load
from sklearn.datasets import make_classification
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from sklearn_cirrus import (
    ServerlessGridSearchCV,
    ServerlessMatrixFactorization,
    ServerlessSGDClassifier,
    load_movielens,
)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
A9A_GRID = {
    "alpha": [1e-5, 1e-4, 1e-3],
    "eta0": [0.05, 0.2],
    "optimizer": ["adagrad", "momentum"],
}
SGD_GRID = {
    "alpha": [1e-5, 1e-4, 1e-3],
    "eta0": [0.05, 0.2],
    "learning_rate": ["constant", "invscaling"],
}
MF_GRID = {"n_components": [20, 50, 100], "alpha": [0.03, 0.06, 0.12, 0.25]}
SURPRISE_GRID = {"n_factors": [20, 50, 100], "reg_all": [0.02, 0.05, 0.1, 0.2]}
RULES = (None, "median", "halving")
REPEATS = 3


def timed(search, X, y):
    started = time.perf_counter()
    search.fit(X, y)
    return search, time.perf_counter() - started


def row(name, search, seconds, sign=1.0):
    """A table row; ``worker_seconds`` and ``cost_usd`` exist for our searches only."""
    results = search.cv_results_
    worker_seconds = results["worker_seconds"].sum() if "worker_seconds" in results else None
    return [
        name,
        f"{seconds:.2f}",
        "-" if worker_seconds is None else f"{worker_seconds:.2f}",
        "-" if worker_seconds is None else f"{results['cost_usd'].sum() * 1e6:.1f}",
        "-" if worker_seconds is None else int(results["early_stopped"].sum()),
        sign * search.best_score_,
        search.best_params_,
    ]


HEADERS = [
    "search",
    "wall (s)",
    "worker-seconds",
    "est. cost (micro-$)",
    "candidates stopped",
    "best CV score",
    "best parameters",
]


def compare(title, estimator, grid, X, y, *, scoring, sign, baselines):
    """Our search with each rule and the baselines, alternated, REPEATS runs of each
    (asynchronous fits vary; the machine is shared): medians compared."""
    print(f"\n### {title}\n")
    ours = {rule: [] for rule in RULES}
    theirs_name = f"GridSearchCV({type(estimator).__name__}(), n_jobs=2)"
    others: dict[str, list] = {}
    rows = []
    for run in range(1, REPEATS + 1):
        for rule in RULES:
            search, seconds = timed(
                ServerlessGridSearchCV(
                    estimator,
                    grid,
                    cv=KFold(3, shuffle=True, random_state=0),
                    scoring=scoring,
                    executor="processes",
                    max_workers=2,
                    early_stopping=rule,
                ),
                X,
                y,
            )
            search.wall_seconds_ = seconds
            ours[rule].append(search)
            name = f"ServerlessGridSearchCV(early_stopping={rule!r}), run {run}"
            rows.append(row(name, search, seconds, sign))
        theirs = GridSearchCV(
            estimator, grid, cv=KFold(3, shuffle=True, random_state=0), scoring=scoring, n_jobs=2
        )
        runs = [(theirs_name, *timed(theirs, X, y))] + baselines()
        for name, search, seconds in runs:
            search.wall_seconds_ = seconds
            others.setdefault(name, []).append(search)
            rows.append(row(f"{name}, run {run}", search, seconds, sign))
    print_table(HEADERS, rows)
    theirs = others[theirs_name]
    print(
        f"\nwall time, medians of {REPEATS} runs: without early stopping "
        f"{_median_wall(ours[None]):.2f} s, {_median_wall(ours[None]) / _median_wall(theirs):.2f}x "
        f"GridSearchCV of the same estimator ({_median_wall(theirs):.2f} s; target <= 1.0x)"
    )
    gaps = [abs(plain.best_score_ - theirs[0].best_score_) for plain in ours[None]]
    print(
        f"no early stopping vs GridSearchCV of the same estimator: best-score gap "
        f"{max(gaps):.4f} at worst over {REPEATS} runs"
    )

    def worker_seconds(search):
        return search.cv_results_["worker_seconds"].sum()

    full = np.mean([worker_seconds(search) for search in ours[None]])
    best_full = np.mean([search.best_score_ for search in ours[None]])
    for rule in RULES[1:]:
        saved = [1 - worker_seconds(search) / full for search in ours[rule]]
        gaps = [abs(search.best_score_ - best_full) for search in ours[rule]]
        print(
            f"early_stopping={rule!r}: {np.mean(saved):.0%} fewer worker-seconds than none "
            f"on average (runs: {', '.join(f'{s:.0%}' for s in saved)}; target >= 30%), "
            f"best-score gap to the mean best without: {max(gaps):.4f} at worst (target <= 0.002); "
            f"median wall {_median_wall(ours[rule]):.2f} s"
        )
    return ours, others


def _median_wall(searches) -> float:
    return float(np.median([search.wall_seconds_ for search in searches]))


def rules_against(ours, rule, name, baselines, target):
    """Our searches with ``rule`` against a baseline's runs: median time ratio, and our
    best score less theirs (at worst)."""
    ratio = _median_wall(ours[rule]) / _median_wall(baselines)
    pairs = zip(ours[rule], baselines, strict=True)
    gaps = [mine.best_score_ - theirs.best_score_ for mine, theirs in pairs]
    print(
        f"early_stopping={rule!r}: median wall {_median_wall(ours[rule]):.2f} s, {ratio:.2f}x "
        f"{name} ({_median_wall(baselines):.2f} s; target <= {target}x); our best CV score "
        f"minus theirs: {min(gaps):+.4f} at worst (target >= -0.002)"
    )


def a9a() -> None:
    X, y = load(DATASETS / "a9a.libsvm.gz", 123)

    def sgd_classifier():
        runs = []
        for kind in (GridSearchCV, HalvingGridSearchCV):
            search = kind(
                SGDClassifier(loss="log_loss", random_state=0),
                SGD_GRID,
                cv=KFold(3, shuffle=True, random_state=0),
                n_jobs=2,
            )
            runs.append(
                (f"{kind.__name__}(SGDClassifier(log_loss), n_jobs=2)", *timed(search, X, y))
            )
        return runs

    ours, baselines = compare(
        f"a9a ({X.shape[0]} rows), 12 candidates x 3 folds, accuracy",
        ServerlessSGDClassifier(random_state=0),
        A9A_GRID,
        X,
        y,
        scoring="accuracy",
        sign=1.0,
        baselines=sgd_classifier,
    )
    name = "HalvingGridSearchCV(SGDClassifier(log_loss), n_jobs=2)"
    rules_against(ours, "halving", name, baselines[name], target=1.0)


def movielens() -> None:
    X, y = load_movielens(DATASETS / "ml-latest-small_ratings.csv.gz")
    X = np.asarray(X)

    def surprise():
        from surprise import SVD, Dataset, Reader
        from surprise.model_selection import GridSearchCV as SurpriseGridSearchCV

        frame = pd.DataFrame({"user": X[:, 0], "item": X[:, 1], "rating": y})
        data = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0)))
        search = SurpriseGridSearchCV(
            SVD, {**SURPRISE_GRID, "random_state": [0]}, measures=["rmse"], cv=3, n_jobs=2
        )
        started = time.perf_counter()
        search.fit(data)
        seconds = time.perf_counter() - started
        best = {k: v for k, v in search.best_params["rmse"].items() if k != "random_state"}
        # in the shape of a scikit-learn search's results, as row() reads them
        result = SimpleNamespace(
            cv_results_={}, best_score_=-search.best_score["rmse"], best_params_=best
        )
        return [("Surprise GridSearchCV(SVD, n_jobs=2)", result, seconds)]

    compare(
        f"MovieLens latest-small ({X.shape[0]} ratings), 12 candidates x 3 folds, RMSE",
        ServerlessMatrixFactorization(random_state=0),
        MF_GRID,
        X,
        y,
        scoring="neg_root_mean_squared_error",
        sign=-1.0,
        baselines=surprise,
    )


def documents(n_documents=30_000, n_words=20_000, length=40, seed=0):
    """Generated text: Zipf word frequencies; the label a noisy linear function of the
    words (a few hundred of them matter, frequent and rare alike)."""
    rng = np.random.RandomState(seed)
    frequency = 1.0 / np.arange(1, n_words + 1)
    drawn = rng.choice(n_words, size=(n_documents, length), p=frequency / frequency.sum())
    weight = np.zeros(n_words)
    weight[rng.choice(n_words, 300, replace=False)] = rng.normal(scale=2.0, size=300)
    margin = weight[drawn].sum(axis=1) + rng.logistic(size=n_documents)
    text = [" ".join(f"w{word}" for word in row) for row in drawn]
    return text, (margin > np.median(margin)).astype(int)


def hashed_text() -> None:
    text, y = documents()
    grid = {"alpha": [1e-6, 1e-5, 1e-4], "eta0": [0.05, 0.2]}
    vectorizer = HashingVectorizer(n_features=2**18, alternate_sign=False)
    cv = KFold(3, shuffle=True, random_state=0)
    prefix = "serverlesssgdclassifier__"
    print(f"\n### Hashed text ({len(text)} generated documents), 6 candidates x 3 folds\n")
    rows, ours, theirs = [], [], []
    for run in range(1, REPEATS + 1):
        search, seconds = timed(
            ServerlessGridSearchCV(
                make_pipeline(vectorizer, ServerlessSGDClassifier(random_state=0)),
                {prefix + k: v for k, v in grid.items()},
                cv=cv,
                executor="processes",
                max_workers=2,
            ),
            text,
            y,
        )
        search.wall_seconds_ = seconds
        ours.append(search)
        rows.append(row(f"ServerlessGridSearchCV(pipeline), run {run}", search, seconds))
        search, seconds = timed(
            GridSearchCV(
                make_pipeline(vectorizer, SGDClassifier(loss="log_loss", random_state=0)),
                {"sgdclassifier__" + k: v for k, v in grid.items()},
                cv=cv,
                n_jobs=2,
            ),
            text,
            y,
        )
        search.wall_seconds_ = seconds
        theirs.append(search)
        name = f"GridSearchCV(pipeline with SGDClassifier, n_jobs=2), run {run}"
        rows.append(row(name, search, seconds))
    print_table(HEADERS, rows)
    refit = ours[-1].best_estimator_[-1].fit_report_
    print(
        f"\nmedian wall {_median_wall(ours):.2f} s: "
        f"{_median_wall(ours) / _median_wall(theirs):.2f}x scikit-learn's "
        f"({_median_wall(theirs):.2f} s; target <= 1.5x); the refit: {refit['path']}, "
        f"{refit['invocations']} invocations"
    )


def warm_up() -> float:
    """Start the shared worker processes once, as a session's first fit would; timed."""
    X, y = make_classification(n_samples=1000, random_state=0)
    started = time.perf_counter()
    ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None).fit(X, y)
    return time.perf_counter() - started


def main() -> None:
    print(f"machine: {machine()}")
    print(f"starting the worker processes (once per session, before any timing): {warm_up():.2f} s")
    a9a()
    hashed_text()
    movielens()


if __name__ == "__main__":
    main()
