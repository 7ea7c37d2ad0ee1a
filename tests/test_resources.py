"""Resources chosen for the user: 'auto' workers and memory, deadlines, budgets, scale-in."""

import time
import warnings

import numpy as np
import pytest

from sklearn_cirrus import (
    ServerlessMatrixFactorization,
    ServerlessSGDClassifier,
    ShardedDataset,
    planning,
)
from sklearn_cirrus.exceptions import ResourceLimitWarning
from sklearn_cirrus.model_selection import ServerlessGridSearchCV
from sklearn_cirrus.runtime.limits import SCALE_IN_GAIN, scaled_in


def _row(workers, memory, seconds, cost, fits=True):
    return {
        "n_workers": workers,
        "worker_memory_mb": memory,
        "predicted_seconds": seconds,
        "predicted_cost_usd": cost,
        "fits_in_memory": fits,
    }


ROWS = [
    _row(1, 512, 10.0, 1.0),
    _row(2, 512, 6.0, 1.2),
    _row(2, 1024, 5.9, 2.4),  # within 3% of the fastest, dearer
    _row(4, 512, 5.8, 3.0, fits=False),  # fastest, but a worker does not fit
    _row(1, 256, 9.0, 0.5, fits=False),  # cheapest, but does not fit
]


@pytest.mark.parametrize(
    "resources, expected",
    [
        ("fastest", (2, 512)),  # the cheapest of those within 3% of the fastest that fit
        ("cheapest", (1, 512)),
        ({"deadline": 8.0}, (2, 512)),  # the cheapest within the deadline
        ({"deadline": 100.0}, (1, 512)),
        ({"budget": 2.5}, (2, 512)),  # the fastest within the budget (3% ties: cheapest)
        ({"budget": 2.5, "deadline": 5.95}, (2, 1024)),
        ({"budget": 1.1}, (1, 512)),
        ({"deadline": 1.0}, (2, 512)),  # none meets it: the fastest
        ({"budget": 0.1}, (1, 512)),  # none meets it: the cheapest
        ({"deadline": 8.0, "budget": 1.1}, (1, 512)),  # nothing meets both: the cheapest
    ],
)
def test_resources_choose_a_row_of_the_plan(resources, expected):
    row = planning.choose(ROWS, resources)
    assert (row["n_workers"], row["worker_memory_mb"]) == expected


def test_what_the_probe_spent_counts_against_a_limit():
    assert planning.choose(ROWS, {"deadline": 8.0})["n_workers"] == 2
    # 3 s of probe: 6 s more no longer meets 8 s
    assert planning.choose(ROWS, {"deadline": 8.0}, spent_seconds=3.0)["n_workers"] == 2
    assert planning.choose(ROWS, {"budget": 1.1}, spent_usd=0.2)["n_workers"] == 1


@pytest.mark.parametrize(
    "resources, message",
    [
        ("quickest", "'resources' parameter"),
        ({"deadlin": 3}, "'deadline'"),
        ({}, "'deadline'"),
        ({"budget": -1}, "positive number"),
        ({"deadline": "soon"}, "positive number"),
    ],
)
def test_bad_resources_are_named(resources, message):
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match=message):
        ServerlessSGDClassifier(n_workers="auto", resources=resources).fit(X, y)


def test_scale_in_halves_the_workers_once_an_epoch_gains_under_its_share():
    assert scaled_in(4, [1.0]) == 4  # one epoch: no curve yet
    assert scaled_in(4, [1.0, 0.9]) == 4  # 10% better
    assert scaled_in(4, [1.0, 1.0 - SCALE_IN_GAIN / 2]) == 2
    assert scaled_in(2, [1.0, 1.1]) == 1  # worse
    assert scaled_in(1, [1.0, 1.0]) == 1  # never below one


@pytest.fixture(scope="module")
def clicks():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60_000, 30))
    y = (X[:, 0] + 0.3 * X[:, 1] + rng.normal(size=len(X)) > 0).astype(int)
    return X, y


def test_auto_runs_the_plans_choice_and_says_what_it_predicted_and_took(clicks):
    X, y = clicks
    clf = ServerlessSGDClassifier(
        n_workers="auto",
        worker_memory_mb="auto",
        executor="processes",
        max_iter=3,
        tol=None,
        random_state=0,
    ).fit(X, y)
    chosen = clf.fit_report_["resources"]
    assert chosen["objective"] == "fastest" and chosen["path"] == "workers"
    # the choice is among the candidates, enforced, and ran: one invocation per worker
    assert chosen["n_workers"] in planning.WORKER_COUNTS
    assert chosen["worker_memory_mb"] in planning.LOCAL_MEMORY_SIZES_MB
    assert clf.fit_report_["workers_per_epoch"] == [chosen["n_workers"]] * 3
    assert clf.fit_report_["invocations"] >= 3 * chosen["n_workers"]
    assert clf.fit_report_["gb_seconds"] == pytest.approx(
        clf.fit_report_["worker_seconds"] * chosen["worker_memory_mb"] / 1024
    )
    # predicted and measured side by side; the probe counted in what it took
    assert chosen["predicted_seconds"] > 0 and chosen["probe_seconds"] > 0
    assert chosen["seconds"] > clf.fit_report_["wall_seconds"]
    assert chosen["cost_usd"] > clf.fit_report_["estimated_cost_usd"]
    # the parameters stay as the user set them; the model is a model
    assert clf.get_params()["n_workers"] == "auto"
    assert clf.score(X, y) > 0.7
    # partial_fit keeps the choice rather than probing again
    clf.partial_fit(X[:5000], y[:5000])
    again = clf.fit_report_["resources"]
    assert (again["n_workers"], again["worker_memory_mb"]) == (
        chosen["n_workers"],
        chosen["worker_memory_mb"],
    )
    assert again["probe_seconds"] == 0.0


def test_cheapest_on_this_machine_is_one_worker(clicks):
    X, y = clicks
    clf = ServerlessSGDClassifier(
        n_workers="auto", executor="processes", resources="cheapest", max_iter=2, tol=None
    ).fit(X, y)
    # two workers on two cores do the same work with more invocations: never cheaper
    assert clf.fit_report_["resources"]["n_workers"] == 1
    assert clf.fit_report_["invocations"] == 2


def test_small_data_has_nothing_to_plan(clicks):
    X, y = clicks
    clf = ServerlessSGDClassifier(n_workers="auto", worker_memory_mb="auto", max_iter=2)
    clf.fit(X[:2000], y[:2000])
    chosen = clf.fit_report_["resources"]
    assert clf.fit_report_["path"] == "in-process"
    assert chosen["path"] == "in-process" and chosen["probe_seconds"] == 0.0
    assert chosen["n_workers"] == 1


def test_plan_reads_a_sharded_dataset_as_fit_would(clicks, tmp_path):
    X, y = clicks
    dataset = ShardedDataset.from_arrays(X, y, str(tmp_path / "ds"))
    clf = ServerlessSGDClassifier(executor="processes", max_iter=2, tol=None)
    table = clf.plan(dataset, n_workers=(1, 2))
    assert list(table["n_workers"]) == [1, 2]
    assert list(table["invocations"]) == [2, 4]
    assert table["measured"][0].startswith(f"probe ({min(len(X), planning.PROBE_ROWS)} rows")
    assert not hasattr(clf, "coef_")


def test_matrix_factorization_plans_too():
    rng = np.random.RandomState(0)
    n = 60_000
    X = np.column_stack([rng.randint(0, 500, n), rng.randint(0, 800, n)])
    y = rng.uniform(1, 5, n)
    table = ServerlessMatrixFactorization(executor="processes", max_iter=2, tol=None).plan(
        X, y, n_workers=(1, 2)
    )
    assert len(table) == 2 and (table["predicted_seconds"] > 0).all()


def test_a_fit_stops_before_an_epoch_that_would_pass_its_deadline(clicks):
    X, y = clicks
    clf = ServerlessSGDClassifier(
        executor="sequential",
        n_workers=1,
        max_iter=10_000,
        tol=None,
        random_state=0,
        resources={"deadline": 0.5},
    )
    started = time.perf_counter()
    with pytest.warns(ResourceLimitWarning, match="deadline of 0.5 s"):
        clf.fit(X[:3000], y[:3000])
    assert time.perf_counter() - started < 2.0
    assert 1 <= clf.n_iter_ < 10_000
    assert clf.fit_report_["stopped_by"] == "deadline"
    assert clf.fit_report_["wall_seconds"] < 0.5 + 0.25  # one epoch of slack at most
    assert clf.score(X, y) > 0.7  # the last epoch's model


def test_a_fit_on_workers_stops_at_its_budget(clicks):
    X, y = clicks
    # a budget that one epoch's cost already nearly spends
    one = ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None).fit(X, y)
    budget = 1.5 * one.fit_report_["estimated_cost_usd"]
    clf = ServerlessSGDClassifier(
        executor="processes", max_iter=50, tol=None, resources={"budget": budget}
    )
    with pytest.warns(ResourceLimitWarning, match="budget"):
        clf.fit(X, y)
    assert clf.fit_report_["stopped_by"] == "budget"
    assert clf.n_iter_ < 50
    # (another fit's epoch, under another load: only an order of magnitude to hold)
    assert clf.fit_report_["estimated_cost_usd"] < 10 * one.fit_report_["estimated_cost_usd"]


def test_fits_that_end_normally_say_why(clicks):
    X, y = clicks
    done = ServerlessSGDClassifier(max_iter=3, tol=None).fit(X[:2000], y[:2000])
    assert done.fit_report_["stopped_by"] == "max_iter"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceLimitWarning)
        converged = ServerlessSGDClassifier(max_iter=1000, resources={"deadline": 1e6})
        converged.fit(X[:2000], y[:2000])
    assert converged.fit_report_["stopped_by"] == "tol"


def test_scale_in_lowers_the_workers_as_the_curve_flattens(clicks):
    X, y = clicks
    clf = ServerlessSGDClassifier(
        executor="processes", n_workers=4, scale_in=True, max_iter=8, tol=None, random_state=0
    ).fit(X, y)
    counts = clf.fit_report_["workers_per_epoch"]
    assert len(counts) == 8 and counts[0] == 4
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 1
    assert counts[-1] < 4  # this curve flattens within 8 epochs
    # each halving follows an epoch that gained under SCALE_IN_GAIN
    curve = clf.loss_curve_
    for epoch in range(1, 8):
        if counts[epoch] < counts[epoch - 1]:
            assert curve[epoch - 2] - curve[epoch - 1] < SCALE_IN_GAIN * curve[epoch - 2]


def test_a_search_stops_every_fit_at_its_deadline(clicks):
    X, y = clicks
    search = ServerlessGridSearchCV(
        # (the estimator's own deadline bounds the refit, which the search's does not)
        ServerlessSGDClassifier(
            max_iter=10_000, tol=None, random_state=0, resources={"deadline": 3.0}
        ),
        {"alpha": [1e-4, 1e-3]},
        cv=2,
        resources={"deadline": 0.5},
    )
    started = time.perf_counter()
    with pytest.warns(ResourceLimitWarning, match="search stopped its fits"):
        search.fit(X[:4000], y[:4000])
    assert time.perf_counter() - started < 3.0 + 0.5 + 3.0
    assert list(search.cv_results_["stopped_by"]) == ["deadline", "deadline"]
    assert (search.cv_results_["split0_stop_epoch"] < 10_000).all()
    assert search.best_score_ > 0.7


def test_a_plan_for_data_that_stays_home_has_one_row_and_no_bill(clicks):
    X, y = clicks
    table = ServerlessSGDClassifier(max_iter=4, tol=None).plan(X[:3000], y[:3000])
    assert list(table["path"]) == ["in-process"]
    assert table["invocations"][0] == 0 and table["predicted_cost_usd"][0] == 0.0
    assert "stays in this process" in table["assumed"][0]
    took = ServerlessSGDClassifier(max_iter=4, tol=None).fit(X[:3000], y[:3000])
    assert took.fit_report_["path"] == "in-process"


def _shaped(mb_per_vcpu=4096.0):
    from dataclasses import replace

    from sklearn_cirrus.executors import PlatformShapedExecutor
    from sklearn_cirrus.platforms import AWS_LAMBDA

    return PlatformShapedExecutor(replace(AWS_LAMBDA, name="shaped", mb_per_vcpu=mb_per_vcpu))


def test_shaped_workers_get_the_cpu_their_memory_buys():
    from sklearn_cirrus.executors import WorkerResources

    executor = _shaped()
    work = range(10_000_000)
    try:
        seconds = {}
        for memory in (4096, 1024, 4096, 1024):  # a quarter of a core at 1024 MB
            started = time.perf_counter()
            result = executor.submit(sum, work, WorkerResources(memory_mb=memory)).result()
            seconds.setdefault(memory, []).append(time.perf_counter() - started)
            assert result == sum(work)
    finally:
        executor.shutdown()
    assert min(seconds[1024]) > 2 * min(seconds[4096])


def _half_waiting(periods):
    # a worker that computes for 20 ms then waits 20 ms (for its data, say), over and over
    for _ in range(periods):
        until = time.perf_counter() + 0.02
        while time.perf_counter() < until:
            pass
        time.sleep(0.02)
    return periods


def test_a_shaped_workers_waits_use_none_of_its_quota():
    # half a vCPU runs a worker that computes half of its time nearly as fast as a whole
    # one: a CPU quota counts CPU time, not the time a worker waits
    from sklearn_cirrus.executors import WorkerResources

    executor = _shaped()
    try:
        seconds = {}
        for memory in (4096, 2048, 4096, 2048):
            started = time.perf_counter()
            assert executor.submit(_half_waiting, 15, WorkerResources(memory_mb=memory)).result()
            seconds.setdefault(memory, []).append(time.perf_counter() - started)
    finally:
        executor.shutdown()
    assert min(seconds[2048]) < 1.3 * min(seconds[4096])


def test_a_plan_on_shaped_workers_uses_their_platform(clicks):
    X, y = clicks
    executor = _shaped()
    try:
        table = ServerlessSGDClassifier(executor=executor, max_iter=2, tol=None).plan(
            X, y, n_workers=(1,), worker_memory_mb=(1024, 4096)
        )
    finally:
        executor.shutdown()
    assert set(table["platform"]) == {"shaped"}
    slow, fast = table["predicted_worker_seconds"]
    assert slow > fast  # a quarter of a core at 1024 MB, a whole one at 4096


def test_the_probe_on_a_platform_runs_with_a_vcpu_for_each_busy_thread(clicks):
    # a CPU quota lets a short probe run unpaused: under one it would time a whole core
    # and read it as the quota's; with one vCPU, a worker's reading ahead would take
    # its training's CPU
    from dataclasses import replace

    from sklearn_cirrus.executors import PlatformShapedExecutor
    from sklearn_cirrus.platforms import AWS_LAMBDA

    class Recording(PlatformShapedExecutor):
        memories: list = []

        def _wait(self, worker, resources):
            self.memories.append(resources.memory_mb)
            return super()._wait(worker, resources)

    X, y = clicks
    executor = Recording(replace(AWS_LAMBDA, name="shaped", mb_per_vcpu=4096.0))
    try:
        ServerlessSGDClassifier(executor=executor, max_iter=2, tol=None).plan(
            X, y, n_workers=(1,), worker_memory_mb=(1024,)
        )
    finally:
        executor.shutdown()
    assert Recording.memories and set(Recording.memories) == {2 * 4096}
