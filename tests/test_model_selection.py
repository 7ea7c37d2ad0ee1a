"""ServerlessGridSearchCV: scikit-learn's search, every fit at once on one capped pool."""

import importlib.util
import pickle
import sys
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier
from sklearn_cirrus.executors import ThreadExecutor

GRID = {"alpha": [1e-4, 1e-3, 1e-1], "eta0": [0.05, 0.2]}


def test_same_results_as_sklearn_grid_search_on_the_exact_path(binary_data):
    X, y = binary_data
    estimator = ServerlessSGDClassifier(n_workers=1, executor="sequential", random_state=0)
    ours = ServerlessGridSearchCV(estimator, GRID, cv=3, executor="sequential").fit(X, y)
    theirs = GridSearchCV(estimator, GRID, cv=3).fit(X, y)
    np.testing.assert_array_equal(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"]
    )
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.best_estimator_.coef_, theirs.best_estimator_.coef_)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_all_fits_share_a_pool_capped_at_max_workers(binary_data, executor):
    X, y = binary_data
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(n_workers=2, random_state=0),
        GRID,
        cv=3,
        executor=executor,
        max_workers=3,
    ).fit(X, y)
    # 18 fits of 2 workers each ran together, never more than 3 invocations at once
    assert 2 <= search.peak_workers_ <= 3
    assert search.best_score_ > 0.85 and len(search.cv_results_["params"]) == 6
    # small data: each fit trains in its own thread, holding one slot of the pool, on
    # process workers too (starting them would cost more than such a fit)
    assert search.best_estimator_.fit_report_["path"] == "in-process"


class _CountingClassifier(ServerlessSGDClassifier):
    """Counts the fits running at once (every instance, across threads)."""

    lock = threading.Lock()
    running = peak = 0

    def fit(self, X, y=None, **kwargs):
        cls = _CountingClassifier
        with cls.lock:
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
        try:
            return super().fit(X, y, **kwargs)
        finally:
            with cls.lock:
                cls.running -= 1


@pytest.mark.parametrize(("early_stopping", "most_at_once"), [(None, 2), ("halving", 18)])
def test_fits_that_train_here_run_as_many_at_once_as_slots_unless_a_rule_compares_them(
    binary_data, early_stopping, most_at_once
):
    # small folds train in this process: with no rule, more threads than slots would
    # only take turns; halving waits at its rungs for every fit, so all of them run
    X, y = binary_data
    _CountingClassifier.peak = 0
    search = ServerlessGridSearchCV(
        _CountingClassifier(random_state=0, max_iter=8),
        GRID,
        cv=3,
        executor="processes",
        max_workers=2,
        early_stopping=early_stopping,
    ).fit(X, y)
    assert search.best_estimator_.fit_report_["path"] == "in-process"
    # (with halving, every one of the 6 x 3 fits is in its fit at the first rung)
    assert _CountingClassifier.peak == most_at_once


@pytest.mark.parametrize("local_pool_size", [False, True])
def test_a_search_whose_folds_are_small_stays_home_refit_included(
    binary_data, monkeypatch, local_pool_size
):
    from sklearn_cirrus import model_selection
    from sklearn_cirrus.data.staging import data_bytes
    from sklearn_cirrus.runtime import driver

    X, y = binary_data
    # the folds (2/3 of the rows) under the size a search's fit keeps in process, all
    # the rows over: an estimator's own size, or the larger one of a pool of this
    # machine's processes (which the estimator's own size does not reach, here)
    size = 0.8 * data_bytes(X)
    monkeypatch.setattr(driver, "IN_PROCESS_MAX_BYTES", 1 if local_pool_size else size)
    monkeypatch.setattr(
        model_selection, "LOCAL_SEARCH_IN_PROCESS_MAX_BYTES", size if local_pool_size else None
    )
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(random_state=0), GRID, cv=3, executor="processes", max_workers=2
    ).fit(X, y)
    # the refit stays home only when no fold's fit sent an invocation (the pool counts)
    assert (search.cv_results_["worker_seconds"] > 0).all()  # (a thread's, here)
    assert search.best_estimator_.fit_report_["path"] == "in-process"
    assert search.best_estimator_.fit_report_["invocations"] == 0
    assert search.best_score_ > 0.85
    # folds over the size: every fit (and so the refit) goes to the workers
    monkeypatch.setattr(driver, "IN_PROCESS_MAX_BYTES", 0.5 * data_bytes(X))
    monkeypatch.setattr(model_selection, "LOCAL_SEARCH_IN_PROCESS_MAX_BYTES", None)
    search.set_params(param_grid={"alpha": [1e-4]}).fit(X, y)
    assert search.best_estimator_.fit_report_["path"] == "workers"


@pytest.mark.parametrize(
    "estimator_executor, path", [(None, "in-process"), ("processes", "workers")]
)
def test_the_search_runs_where_its_estimator_says_by_default(binary_data, estimator_executor, path):
    # a script wrapped in a search runs where it ran before: threads by default (no
    # __main__ guard needed), processes when the estimator asks for them
    X, y = binary_data
    estimator = ServerlessSGDClassifier(executor=estimator_executor, random_state=0)
    search = ServerlessGridSearchCV(estimator, {"alpha": [1e-4]}, cv=2).fit(X, y)
    assert search.best_estimator_.fit_report_["path"] == path
    assert search.best_estimator_.executor == estimator_executor


def test_pipeline_grid_and_a_clean_refitted_model(binary_data):
    X, y = binary_data
    pipeline = make_pipeline(StandardScaler(), ServerlessSGDClassifier(random_state=0))
    search = ServerlessGridSearchCV(
        pipeline,
        {"serverlesssgdclassifier__alpha": [1e-4, 10.0]},
        cv=3,
        executor=ThreadExecutor(),
        max_workers=2,
    ).fit(X, y)
    assert search.best_params_ == {"serverlesssgdclassifier__alpha": 1e-4}
    # the user's estimator and the refitted one keep their own executor setting
    assert pipeline[-1].executor is None and search.best_estimator_[-1].executor is None
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))


class CountingScaler(StandardScaler):
    """A StandardScaler that counts its fits and transforms (class-wide: clones too)."""

    calls = {"fit": 0, "transform": 0}

    def fit(self, X, y=None, sample_weight=None):
        CountingScaler.calls["fit"] += 1
        return super().fit(X, y, sample_weight)

    def transform(self, X, copy=None):
        CountingScaler.calls["transform"] += 1
        return super().transform(X, copy)


def test_steps_every_candidate_shares_are_fitted_once_per_fold(binary_data):
    X, y = binary_data
    pipeline = make_pipeline(
        CountingScaler(), ServerlessSGDClassifier(executor="sequential", random_state=0)
    )
    grid = {"serverlesssgdclassifier__alpha": [1e-4, 1e-3, 1e-2]}
    CountingScaler.calls.update(fit=0, transform=0)
    ours = ServerlessGridSearchCV(pipeline, grid, cv=3, executor="sequential").fit(X, y)
    # 3 folds and the refit: one fit_transform each (a fit and a transform), and one
    # transform of each fold's held-out part; not one per candidate
    assert CountingScaler.calls == {"fit": 4, "transform": 4 + 3}
    theirs = GridSearchCV(pipeline, grid, cv=3).fit(X, y)  # the same results
    np.testing.assert_array_equal(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"]
    )
    # the refitted pipeline holds its own fitted steps, not the search's shared ones
    assert type(ours.best_estimator_[0]) is CountingScaler
    np.testing.assert_array_equal(ours.best_estimator_[0].mean_, theirs.best_estimator_[0].mean_)
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))
    # a step the grid varies, and the steps after it, are fitted by every candidate
    CountingScaler.calls.update(fit=0, transform=0)
    ServerlessGridSearchCV(
        pipeline, {"countingscaler__with_mean": [True, False]}, cv=3, executor="sequential"
    ).fit(X, y)
    assert CountingScaler.calls["fit"] == 2 * 3 + 1


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
@pytest.mark.parametrize("early_stopping", [None, "halving"])
def test_a_failing_candidate_follows_error_score(binary_data, early_stopping):
    X, y = binary_data
    # 1 MB cannot hold a batch: those fits fail before their first epoch
    grid = {"alpha": [1e-4, 1e-3, 1e-2], "worker_memory_mb": [None, 1]}
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(tol=None, max_iter=8, random_state=0),
        grid,
        cv=2,
        executor="threads",
        max_workers=1,
        early_stopping=early_stopping,
        error_score=np.nan,
    )
    with pytest.warns(FitFailedWarning, match="fits failed"):
        search.fit(X, y)
    results = search.cv_results_
    ran = np.isfinite(results["mean_test_score"])
    np.testing.assert_array_equal(ran, [True, False] * 3)
    if early_stopping == "halving":  # the rung did not wait for the failed fits
        # of the three that ran, the best third (one) went past the rung at epoch 2
        assert (results["split0_stop_epoch"][ran] == 8).sum() == 1
    # the failed fits ran no epoch and their cost is unknown; the others are accounted
    assert results["split0_stop_epoch"][1] == -1 and np.isnan(results["worker_seconds"][1])
    assert results["split0_stop_epoch"][0] > 0 and results["worker_seconds"][0] > 0


WIDE_GRID = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], "eta0": [0.01, 0.1]}


def run_to(max_iter, **search_params):
    """A 12-candidate search whose fits run exactly max_iter epochs unless stopped."""
    model = ServerlessSGDClassifier(tol=None, max_iter=max_iter, random_state=0)
    return ServerlessGridSearchCV(
        model, WIDE_GRID, cv=3, executor="threads", max_workers=2, **search_params
    )


@pytest.mark.parametrize("rule", ["median", "halving"])
def test_early_stopping_saves_worker_time_and_keeps_the_best(binary_data, rule):
    X, y = binary_data
    full = run_to(16).fit(X, y)
    early = run_to(16, early_stopping=rule).fit(X, y)
    results = early.cv_results_
    stopped = results["early_stopped"]
    assert stopped.any() and not stopped.all()
    assert set(results["stopped_by"][stopped]) == {rule}
    assert not full.cv_results_["early_stopped"].any()
    # stopped candidates ran fewer epochs (a fold that raced ahead of the rest may have
    # finished before the stop reached it); the others ran all of theirs
    epochs = np.column_stack([results[f"split{k}_stop_epoch"] for k in range(3)])
    assert (epochs[stopped].min(axis=1) < 16).all() and (epochs[~stopped] == 16).all()
    for k in range(3):
        assert (full.cv_results_[f"split{k}_stop_epoch"] == 16).all()
    # the work saved, in epochs: seconds are too noisy to compare on a loaded machine now
    # that an epoch of this data takes milliseconds. How much is saved depends on how far
    # the other folds raced ahead before the stop reached them (2.4% in one loaded CI run,
    # over 20% on a quiet machine): benchmarks/bench_search.py measures it (55-59%)
    epochs_run = sum(results[f"split{k}_stop_epoch"].sum() for k in range(3))
    assert epochs_run < sum(full.cv_results_[f"split{k}_stop_epoch"].sum() for k in range(3))
    assert early.best_score_ >= full.best_score_ - 0.01
    if rule == "halving":  # stopped at a rung, on every fold
        assert set(epochs[stopped].ravel()) <= {2, 6}


def _mean_scores_at(search, epoch: int, candidates) -> dict[int, float]:
    """Each candidate's mean held-out score over its folds at ``epoch``, from its curves."""
    means = {}
    for i in candidates:
        scores = [c["score"][list(c["epoch"]).index(epoch)] for c in search.loss_curves_[i]]
        means[i] = np.mean(scores)
    return means


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_halving_keeps_the_best_third_of_the_candidates_at_each_rung(binary_data, executor):
    X, y = binary_data
    search = run_to(16, early_stopping="halving").set_params(executor=executor).fit(X, y)
    results = search.cv_results_
    epochs = np.column_stack([results[f"split{k}_stop_epoch"] for k in range(3)])
    # every fit waits at a rung for the others: a candidate stops there on every fold
    assert all(len(set(row)) == 1 for row in epochs)

    # rung 2 ranks all 12 by their mean score over the folds and keeps 4; rung 6 keeps 2 of
    # those (as HalvingGridSearchCV's 12, 4, 2); they train to the end
    # (of equals, the first in the grid, as scikit-learn ranks them)
    def best(means, n):
        return set(sorted(means, key=lambda i: (-means[i], i))[:n])

    kept_2 = {i for i in range(12) if epochs[i, 0] > 2}
    assert kept_2 == best(_mean_scores_at(search, 2, range(12)), 4)
    kept_6 = {i for i in range(12) if epochs[i, 0] == 16}
    assert kept_6 == best(_mean_scores_at(search, 6, kept_2), 2)
    assert set(results["stopped_by"][epochs[:, 0] < 16]) == {"halving"}


def test_halving_scores_its_rungs_only(binary_data):
    X, y = binary_data
    search = run_to(20, early_stopping="halving").fit(X, y)
    for folds in search.loss_curves_:
        for curve in folds:
            scored = set(np.asarray(curve["epoch"])[np.isfinite(curve["score"])])
            assert scored == {2, 6, 18} & set(curve["epoch"])
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")
        axes = search.plot_loss_curves()  # the score row drawn from the rungs' points
        assert all(len(line.get_xdata()) <= 3 for line in axes[0, 0].get_lines())
        assert any(len(line.get_xdata()) >= 1 for line in axes[0, 0].get_lines())


def test_loss_curves_follow_every_fit(binary_data, always_fan_out):
    X, y = binary_data
    search = run_to(5, early_stopping="median").fit(X, y)
    assert len(search.loss_curves_) == 12 and all(len(f) == 3 for f in search.loss_curves_)
    for i, folds in enumerate(search.loss_curves_):
        for k, curve in enumerate(folds):
            n = search.cv_results_[f"split{k}_stop_epoch"][i]
            np.testing.assert_array_equal(curve["epoch"], np.arange(1, n + 1))
            assert np.all(np.diff(curve["seconds"]) > 0)
            # two epochs can end at the same moment (epochs overlap): costs never decrease
            assert np.all(np.diff(curve["worker_seconds"]) >= 0) and curve["worker_seconds"][0] > 0
            assert np.all(np.diff(curve["cost_usd"]) >= 0) and curve["cost_usd"][0] > 0
            assert np.all(np.isfinite(curve["loss"])) and np.all(curve["score"] > 0.5)
    # the cost column is the fits' whole cost: their curves' last point, plus, for a
    # stopped fit, the invocations that were already running when it stopped
    last = np.array([sum(c["cost_usd"][-1] for c in folds) for folds in search.loss_curves_])
    total, stopped = search.cv_results_["cost_usd"], search.cv_results_["early_stopped"]
    np.testing.assert_allclose(total[~stopped], last[~stopped])
    assert np.all(total[stopped] >= last[stopped])


def test_a_candidate_stopped_by_hand_from_another_thread(binary_data, always_fan_out):
    import threading
    import time

    X, y = binary_data
    model = ServerlessSGDClassifier(tol=None, max_iter=40, random_state=0)
    search = ServerlessGridSearchCV(model, {"alpha": [1e-4, 1e-3, 1e-2]}, cv=3, executor="threads")
    runner = threading.Thread(target=search.fit, args=(X, y))
    runner.start()
    deadline = time.monotonic() + 60
    while getattr(search, "_board", None) is None or not search._board.record(0, 0).epoch:
        assert time.monotonic() < deadline, "the search never reached a checkpoint"
        time.sleep(0.01)
    with pytest.raises(ValueError, match="one of the 3 candidates, got 3"):
        search.stop_candidate(3)
    # the running search's parameters are the user's: the shared pool is the search's own
    assert search.get_params()["estimator"] is model and model.executor is None
    search.stop_candidate(0)
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")
        axes = search.plot_loss_curves()  # live: the curves so far
        assert 1 <= len(axes[-1, 0].get_lines()) <= 3 + 1
    runner.join()
    results = search.cv_results_
    assert results["stopped_by"][0] == "by hand" and not results["early_stopped"][1:].any()
    assert all(results[f"split{k}_stop_epoch"][0] < 40 for k in range(3))
    assert all(results[f"split{k}_stop_epoch"][1] == 40 for k in range(3))
    assert np.isfinite(results["mean_test_score"][0])  # scored where it stopped
    with pytest.raises(RuntimeError, match="running search"):
        search.stop_candidate(1)


def test_plot_loss_curves_draws_a_line_per_candidate(binary_data):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = binary_data
    search = run_to(4, early_stopping="median")
    with pytest.raises(NotFittedError):
        search.plot_loss_curves()
    search.fit(X, y)
    axes = search.plot_loss_curves()
    assert axes.shape == (2, 2)  # held-out score and training loss, by time and by cost
    n_stopped = search.cv_results_["early_stopped"].sum()
    for ax in axes.flat:
        # one line per candidate plus one end marker per stopped candidate
        assert len(ax.get_lines()) == 12 + n_stopped
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == n_stopped
    assert "held-out" in axes[0, 0].get_ylabel() and "loss" in axes[1, 0].get_ylabel()
    assert "cost" in axes[1, 1].get_xlabel() and "first epoch" in axes[1, 0].get_xlabel()


def test_plotted_curves_are_the_searchs_own_figures(binary_data):
    # the lines carry what loss_curves_ holds: held-out score and loss averaged over the
    # folds at each epoch, cost summed over all folds (an ended one at its final cost),
    # time from the end of the search's first epoch; the legend is outside the axes
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = binary_data
    search = run_to(6, early_stopping="median").fit(X, y)
    axes = search.plot_loss_curves()
    plain = [line for line in axes[1, 1].get_lines() if line.get_marker() != "x"]
    scores = [line for line in axes[0, 0].get_lines() if line.get_marker() != "x"]
    start = min(fold["seconds"][0] for folds in search.loss_curves_ for fold in folds)
    for i, folds in enumerate(search.loss_curves_):
        epochs = max(len(fold["epoch"]) for fold in folds)
        loss = [np.mean([f["loss"][e] for f in folds if len(f["loss"]) > e]) for e in range(epochs)]
        score = [
            np.mean([f["score"][e] for f in folds if len(f["score"]) > e]) for e in range(epochs)
        ]
        cost = [
            sum(f["cost_usd"][min(e, len(f["cost_usd"]) - 1)] for f in folds) for e in range(epochs)
        ]
        np.testing.assert_allclose(plain[i].get_ydata(), loss)
        np.testing.assert_allclose(plain[i].get_xdata(), cost)
        np.testing.assert_allclose(scores[i].get_ydata(), score)
        assert np.all(np.diff(plain[i].get_xdata()) >= 0)  # cost never falls
        seconds = scores[i].get_xdata()
        assert np.all(np.diff(seconds) >= 0) and seconds[0] >= 0
    assert min(line.get_xdata()[0] for line in scores) == 0.0 and start > 0
    figure = axes[0, 0].figure
    figure.canvas.draw()
    legend = axes[0, 1].get_legend()
    assert legend.get_window_extent().x0 >= axes[0, 1].get_window_extent().x1


def test_verbose_shows_a_progress_bar_and_zero_is_silent(binary_data, capsys):
    X, y = binary_data
    run_to(2, verbose=1).fit(X, y)
    shown = capsys.readouterr().err
    assert "36/36" in shown
    run_to(2, verbose=0).fit(X, y)
    assert capsys.readouterr().err == ""


def test_verbose_without_tqdm_prints_plain_lines(binary_data, capsys, monkeypatch):
    X, y = binary_data
    # a core install: importing tqdm fails
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    run_to(2, verbose=1).fit(X, y)
    lines = capsys.readouterr().err.splitlines()
    done = [line for line in lines if line.startswith("fits: ")]
    assert done[0] == "fits: 1/36 done" and done[-1] == "fits: 36/36 done"


def test_a_dashboard_without_bokeh_names_the_extra(binary_data, monkeypatch):
    X, y = binary_data
    monkeypatch.setitem(sys.modules, "bokeh.server.server", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[dashboard\]'"):
        run_to(2, dashboard=True).fit(X, y)


def test_randomized_search_matches_scikit_learn_on_the_exact_path(binary_data):
    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV

    from sklearn_cirrus import ServerlessRandomizedSearchCV

    X, y = binary_data
    estimator = ServerlessSGDClassifier(n_workers=1, executor="sequential", random_state=0)
    space = {"alpha": loguniform(1e-5, 1e-1), "eta0": [0.05, 0.2]}
    ours = ServerlessRandomizedSearchCV(
        estimator, space, n_iter=5, cv=3, random_state=0, executor="sequential"
    ).fit(X, y)
    theirs = RandomizedSearchCV(estimator, space, n_iter=5, cv=3, random_state=0).fit(X, y)
    assert ours.cv_results_["params"] == theirs.cv_results_["params"]
    np.testing.assert_array_equal(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"]
    )


def test_early_stopping_on_matrix_factorization_in_a_pipeline():
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_cirrus import ServerlessMatrixFactorization

    rng = np.random.RandomState(0)
    taste, kind = rng.normal(size=80), rng.normal(size=60)
    users, items = rng.randint(0, 80, 6000), rng.randint(0, 60, 6000)
    ratings = np.clip(3 + taste[users] + kind[items] + taste[users] * kind[items], 1, 5)
    pipeline = make_pipeline(
        FunctionTransformer(lambda X: X.astype(str)),
        ServerlessMatrixFactorization(n_components=4, max_iter=12, random_state=0),
    )
    grid = {
        "serverlessmatrixfactorization__alpha": [0.01, 0.1, 1.0, 10.0],
        "serverlessmatrixfactorization__eta0": [0.01, 0.1],
    }
    search = ServerlessGridSearchCV(
        pipeline, grid, cv=3, executor="threads", early_stopping="median"
    ).fit(np.column_stack([users, items]), ratings)
    results = search.cv_results_
    assert results["early_stopped"].any() and not results["early_stopped"].all()
    # held-out R^2 was measured through the pipeline at every checkpoint
    scores = [curve["score"] for folds in search.loss_curves_ for curve in folds]
    assert all(np.isfinite(s).all() for s in scores)
    assert search.best_params_["serverlessmatrixfactorization__alpha"] <= 1.0


def test_every_fit_keeps_its_model_in_the_search_store(binary_data, redis_url):
    import redis

    X, y = binary_data
    estimator = ServerlessSGDClassifier(max_iter=5, random_state=0)
    search = ServerlessGridSearchCV(
        estimator, {"alpha": [1e-4, 1e-2]}, cv=2, executor="threads", store=redis_url
    ).fit(X, y)
    assert search.best_score_ > 0.85
    # the refitted model keeps the user's setting; the fits left nothing in Redis
    assert search.best_estimator_.store is None and estimator.store is None
    assert redis.Redis.from_url(redis_url).keys("cirrus:*") == []
    # and the fits did use it: a store that cannot be reached fails them all, by name
    unreachable = ServerlessGridSearchCV(
        estimator,
        {"alpha": [1e-4]},
        cv=2,
        executor="threads",
        store="redis://127.0.0.1:1/0",
        error_score="raise",
    )
    # (its deletion at the end fails with the same error: told once, by the fit's own)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ConnectionError, match="127.0.0.1:1"):
            unreachable.fit(X, y)


@pytest.mark.usefixtures("always_fan_out")
@pytest.mark.parametrize(
    "scoring, refit, key",
    [
        (None, True, "mean_test_score"),
        ("balanced_accuracy", True, "mean_test_score"),
        (["accuracy", "roc_auc"], "accuracy", "mean_test_roc_auc"),
    ],
)
def test_a_search_over_arrays_stages_them_once(monkeypatch, rng, scoring, refit, key):
    # every candidate x fold fit reads row views of one dataset, written once and
    # removed at the end; the splits are scikit-learn's, from the arrays; named
    # scorers score the workers' predictions against each fold's targets
    from sklearn.model_selection import StratifiedKFold

    from sklearn_cirrus.dataset import ShardedDataset
    from sklearn_cirrus.runtime import driver

    X = rng.normal(size=(900, 6))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=900) > 0, "yes", "no")
    written, stagings = [], []
    from_arrays, stage = ShardedDataset.from_arrays.__func__, driver.stage

    def counted_dataset(cls, *args, **kwargs):
        written.append(from_arrays(cls, *args, **kwargs))
        return written[-1]

    def counted_stage(*args, **kwargs):
        stagings.append(1)
        return stage(*args, **kwargs)

    monkeypatch.setattr(ShardedDataset, "from_arrays", classmethod(counted_dataset))
    monkeypatch.setattr(driver, "stage", counted_stage)
    estimator = ServerlessSGDClassifier(executor="sequential", n_workers=1, random_state=0)
    cv = StratifiedKFold(3)
    grid = {"alpha": [1e-4, 1.0]}  # a clear winner
    options = dict(cv=cv, scoring=scoring, refit=refit)
    search = ServerlessGridSearchCV(estimator, grid, **options).fit(X, y)
    assert len(written) == 1 and not stagings
    fs, root = written[0]._filesystem()
    assert not fs.exists(root)
    reference = GridSearchCV(estimator, grid, **options).fit(X, y)
    assert search.best_params_ == reference.best_params_
    np.testing.assert_allclose(search.cv_results_[key], reference.cv_results_[key], atol=0.03)
    assert type(search.scorer_) is type(reference.scorer_)
    assert search.score(X, y) > 0.8
