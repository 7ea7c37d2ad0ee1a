"""plan(): a probe of the real thing, then each configuration's predicted figures."""

import os
import re
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.planning import Probe, choose, plan_rows, predict
from sklearn_cirrus.platforms import AWS_LAMBDA, Platform
from sklearn_cirrus.runtime.driver import TrainingSettings

PROBE = Probe(
    executor="processes",
    rows=1000,
    compute_per_sample=1e-6,
    io_per_sample=1e-7,
    invocation_seconds=0.01,
    first_epoch_seconds=0.0,
    cpu_fraction=None,
    contention=1.0,
    staging_per_row=2e-7,
    fit_seconds=0.05,
    peak_worker_memory_mb=80.0,
    seconds=0.1,
)


def _predicted(n_workers, platform=None, memory_mb=1024):
    return predict(
        PROBE,
        n_samples=1_000_000,
        epochs=3,
        n_workers=n_workers,
        memory_mb=memory_mb,
        platform=platform,
        cores=2,
    )


def test_on_this_machine_workers_share_its_cores():
    # 3 epochs of 1e6 samples at 1.1 us, and 0.01 s an invocation (n_workers an epoch)
    busy = {w: 3 * 1e6 * 1.1e-6 + 3 * w * 0.01 for w in (1, 2, 4)}
    for workers, parallel in ((1, 1), (2, 2), (4, 2)):
        figures = _predicted(workers)
        assert figures["invocations"] == 3 * workers
        assert figures["predicted_seconds"] == pytest.approx(
            0.05 + 1e6 * 2e-7 + busy[workers] / parallel
        )
        # beyond the 2 cores, a worker is billed while it waits for one
        assert figures["predicted_worker_seconds"] == pytest.approx(
            busy[workers] * workers / parallel
        )
        gb_seconds = figures["predicted_worker_seconds"]  # 1024 MB
        assert figures["predicted_cost_usd"] == pytest.approx(
            gb_seconds * AWS_LAMBDA.usd_per_gb_second + 3 * workers * AWS_LAMBDA.usd_per_invocation
        )


def test_the_fits_preparation_adds_to_its_seconds_not_to_its_workers():
    prepared = replace(PROBE, preparation_seconds=0.5)
    for in_process in (False, True):
        plain, slow = (
            predict(
                probe,
                n_samples=1_000_000,
                epochs=3,
                n_workers=2,
                memory_mb=1024,
                platform=None,
                cores=2,
                in_process=in_process,
            )
            for probe in (PROBE, prepared)
        )
        assert slow["predicted_seconds"] == pytest.approx(plain["predicted_seconds"] + 0.5)
        assert slow["predicted_worker_seconds"] == plain["predicted_worker_seconds"]
        assert slow["predicted_cost_usd"] == plain["predicted_cost_usd"]


def test_what_two_workers_cost_each_other_is_said_measured_or_assumed():
    settings = TrainingSettings(optimizer=None, max_iter=3, tol=None)
    read, unread = replace(PROBE, contention=1.2), replace(PROBE, contention=None)

    def rows(probe):
        return plan_rows(
            probe,
            settings,
            n_samples=1_000_000,
            n_workers=(2,),
            memory_sizes=(1024,),
            platform=None,
            memory_needed=100,
        )[0]

    assert "1.20x a sample's cost with two workers at once" in rows(read)["measured"]
    assert "not slowing each other" not in rows(read)["assumed"]
    if (os.cpu_count() or 1) > 1:  # (one core: nothing to read)
        assert "two workers at once not read" in rows(unread)["measured"]
        assert "workers not slowing each other" in rows(unread)["assumed"]
    # not read: predicted as workers that do not slow each other
    assert (
        rows(unread)["predicted_seconds"]
        == rows(replace(PROBE, contention=1.0))["predicted_seconds"]
        < rows(read)["predicted_seconds"]
    )


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no two workers at once")
@pytest.mark.parametrize("executor, contention", [("threads", 4.0), ("processes", None)])
def test_workers_in_one_process_touch_a_new_model_once_between_them(
    executor, contention, monkeypatch
):
    from sklearn_cirrus import planning

    # one worker: a first epoch of 0.5 s (0.3 s more than the second), the second 0.15 s
    # of compute and 0.05 s an invocation; then two workers, one epoch, 1.0 s in all
    once = {"worker_seconds": 0.5, "seconds_compute": 0.1, "seconds_io": 0.0, "invocations": 1}
    both = {"worker_seconds": 0.7, "seconds_compute": 0.25, "seconds_io": 0.0, "invocations": 2}
    both.update(seconds_staging=0.01, peak_worker_memory_mb=100.0)
    side_by_side = {"worker_seconds": 1.0, "invocations": 2}

    def train(kernel, X, y, sample_weight, settings, init):
        if settings.n_workers > 1:
            return SimpleNamespace(report=side_by_side)
        settings.on_epoch(SimpleNamespace(report=once))
        return SimpleNamespace(report=both)

    monkeypatch.setattr(planning, "train", train)
    X, y = np.zeros((1000, 3)), np.zeros(1000)
    settings = TrainingSettings(optimizer=None, executor=executor, max_iter=3, tol=None)
    measured = planning.probe(None, X, y, np.ones(1000), settings, init={})
    # threads: 1.0 s less 2 invocations and one first touch (0.4 s) is 0.6 us a sample,
    # 4x one worker's 0.15; processes: less two first touches (0.7 s), too little is
    # left of the epoch to read
    assert measured.contention == (None if contention is None else pytest.approx(contention))


def test_on_a_platform_memory_buys_cpu_and_invocations_start_cold():
    half = _predicted(4, AWS_LAMBDA, memory_mb=AWS_LAMBDA.mb_per_vcpu / 2)
    full = _predicted(4, AWS_LAMBDA, memory_mb=AWS_LAMBDA.mb_per_vcpu)
    more = _predicted(4, AWS_LAMBDA, memory_mb=2 * AWS_LAMBDA.mb_per_vcpu)
    starts = 12 * AWS_LAMBDA.cold_start_seconds
    assert full["predicted_worker_seconds"] == pytest.approx(3.3 + 12 * 0.01 + starts)
    # CPU time not read (thread workers): all of a worker's time is its CPU time
    assert half["predicted_worker_seconds"] == pytest.approx(2 * (3.3 + 12 * 0.01) + starts)
    # past one vCPU a worker is no faster: the same seconds, twice the GB-seconds
    assert more["predicted_seconds"] == pytest.approx(full["predicted_seconds"])
    assert more["predicted_gb_seconds"] == pytest.approx(2 * full["predicted_gb_seconds"])
    # side by side: 4 workers, a quarter of the busy time each
    assert full["predicted_seconds"] == pytest.approx(0.05 + 0.2 + (3.3 + 0.12 + starts) / 4)


def test_under_a_cpu_quota_a_workers_waits_hide_in_its_pauses():
    # on a CPU 60% of its time unthrottled: 0.8 of a vCPU still runs it at that speed
    # (its waits take the time it would be paused), half of one at 1.2x its time; a
    # worker whose reading used 0.2 of a CPU beside its training runs 1.2x its time on
    # one vCPU, and unthrottled on two
    platform = replace(AWS_LAMBDA, cold_start_seconds=0.0)

    def worker_seconds(fraction_of_vcpu, cpus_used=0.6):
        return predict(
            replace(PROBE, cpu_fraction=cpus_used),
            n_samples=1_000_000,
            epochs=3,
            n_workers=1,
            memory_mb=fraction_of_vcpu * platform.mb_per_vcpu,
            platform=platform,
            cores=2,
        )["predicted_worker_seconds"]

    whole = 3.3 + 3 * 0.01
    assert worker_seconds(1.0) == pytest.approx(whole)
    assert worker_seconds(0.8) == pytest.approx(whole)
    assert worker_seconds(0.5) == pytest.approx(1.2 * whole)
    assert worker_seconds(1.0, cpus_used=1.2) == pytest.approx(1.2 * whole)
    assert worker_seconds(2.0, cpus_used=1.2) == pytest.approx(whole)


def test_cheapest_takes_the_fastest_of_the_sizes_the_price_table_prices_alike():
    # below one vCPU a worker's seconds shrink as its memory grows: the same dollars,
    # which rounding alone sets apart (here 1024 MB by an ulp)
    platform = replace(AWS_LAMBDA, cold_start_seconds=0.0)
    rows = [
        {
            "n_workers": 1,
            "worker_memory_mb": memory,
            "fits_in_memory": True,
            **predict(
                replace(PROBE, cpu_fraction=1.05),
                n_samples=1_000_000,
                epochs=5,
                n_workers=1,
                memory_mb=memory,
                platform=platform,
                cores=2,
            ),
        }
        for memory in (1024, 1400, 1769, 3008)
    ]
    costs = [row["predicted_cost_usd"] for row in rows]
    assert costs[:3] == pytest.approx([costs[0]] * 3, rel=1e-12) and costs[3] > 1.5 * costs[0]
    assert choose(rows, "cheapest")["worker_memory_mb"] == 1769
    # a cost apart by more than rounding is not a tie
    rows[0]["predicted_cost_usd"] *= 1 - 1e-6
    assert choose(rows, "cheapest")["worker_memory_mb"] == 1024


def test_a_price_table_is_data_the_user_replaces():
    discounted = replace(AWS_LAMBDA, usd_per_gb_second=AWS_LAMBDA.usd_per_gb_second / 2)
    plain, cheaper = _predicted(2, AWS_LAMBDA), _predicted(2, discounted)
    requests = plain["invocations"] * AWS_LAMBDA.usd_per_invocation
    assert cheaper["predicted_cost_usd"] - requests == pytest.approx(
        (plain["predicted_cost_usd"] - requests) / 2
    )
    assert Platform.from_dict(AWS_LAMBDA.to_dict()) == AWS_LAMBDA
    with pytest.raises(ValueError, match="unknown Platform fields"):
        Platform.from_dict({**AWS_LAMBDA.to_dict(), "usd_per_gb_sec": 1.0})
    # fit_report_ prices every fit with the same table
    from sklearn_cirrus.runtime import driver

    assert driver.USD_PER_GB_SECOND == AWS_LAMBDA.usd_per_gb_second


@pytest.fixture(scope="module")
def problem():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30_000, 20))
    return X, (X[:, 0] + 0.5 * rng.normal(size=len(X)) > 0).astype(int)


def test_plan_probes_then_predicts_every_configuration_without_training(problem):
    X, y = problem
    clf = ServerlessSGDClassifier(executor="processes", max_iter=4, tol=None, random_state=0)
    cores = os.cpu_count()
    table = clf.plan(X, y, n_workers=(1, cores, 2 * cores), worker_memory_mb=(512, 1024))
    assert not hasattr(clf, "coef_")  # nothing trained
    assert len(table) == 6
    assert list(table["n_workers"]) == [1, 1, cores, cores, 2 * cores, 2 * cores]
    assert list(table["invocations"]) == [4 * w for w in table["n_workers"]]
    assert (table["predicted_seconds"] > 0).all() and (table["predicted_cost_usd"] > 0).all()
    # twice as many workers as cores: more worker-seconds, and no faster
    rows = table[table["worker_memory_mb"] == 1024].set_index("n_workers")
    fewer, more = rows.loc[cores], rows.loc[2 * cores]
    assert more["predicted_worker_seconds"] > fewer["predicted_worker_seconds"]
    assert more["predicted_seconds"] >= fewer["predicted_seconds"]
    # a worker needs its runtime (a process's address space) and more
    runtime = clf._fit_executor_runtime_mb() if hasattr(clf, "_fit_executor_runtime_mb") else 0
    assert (table["memory_needed_mb"] > runtime).all()
    assert list(table["fits_in_memory"]) == list(
        table["memory_needed_mb"] <= table["worker_memory_mb"]
    )
    assert table["measured"][0].startswith("probe (30000 rows")
    assert f"{cores} cores shared" in table["assumed"][0]


def test_plan_times_the_fits_preparation_as_a_cost_of_the_fit(problem, monkeypatch):
    X, y = problem
    from sklearn_cirrus import linear_model

    clf = ServerlessSGDClassifier(executor="processes", max_iter=2, tol=None, random_state=0)
    quick = clf.plan(X, y, n_workers=(1,))
    validate = linear_model.validate_data

    def slow_validation(*args, **kwargs):  # a preparation that takes 0.4 s
        time.sleep(0.4)
        return validate(*args, **kwargs)

    monkeypatch.setattr(linear_model, "validate_data", slow_validation)
    slow = clf.plan(X, y, n_workers=(1,))
    prepared_ms = int(re.search(r"(\d+) ms to prepare", slow["measured"][0]).group(1))
    assert prepared_ms >= 400
    # the rest of the prediction is a probe's, which varies by less than that here
    assert slow["predicted_seconds"][0] - quick["predicted_seconds"][0] > 0.3


def test_without_pandas_the_plan_is_a_dict_of_arrays(problem, monkeypatch):
    X, y = problem
    from sklearn_cirrus import planning

    monkeypatch.setattr(planning, "_pandas", lambda: None)  # a core install
    table = ServerlessSGDClassifier(executor="processes", max_iter=2).plan(
        X, y, n_workers=(1, 2), platform=AWS_LAMBDA
    )
    assert isinstance(table, dict)
    assert table["worker_memory_mb"].tolist() == [*AWS_LAMBDA.memory_sizes_mb] * 2
    assert set(table["platform"]) == {AWS_LAMBDA.name}
