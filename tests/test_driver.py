"""The engine end to end: determinism, relaunches, failures, limits and clean-up."""

import traceback
from dataclasses import replace

import numpy as np
import pytest
from sklearn.datasets import make_classification
from worker_faults import allocate_too_much, die, die_at_first_probe, explode, hang

from sklearn_cirrus import (
    ServerlessSGDClassifier,
    WorkerError,
    WorkerLost,
    WorkerOutOfMemory,
    WorkerTimeout,
)
from sklearn_cirrus.executors import (
    Executor,
    ProcessExecutor,
    SequentialExecutor,
    ThreadExecutor,
    make_executor,
)
from sklearn_cirrus.runtime.stopping import StopRule
from sklearn_cirrus.store import memory

EXECUTORS = ["sequential", "threads", "processes"]


class FailingExecutor(Executor):
    """Runs ``failure`` instead of the worker for the first ``times`` invocations."""

    def __init__(self, inner: Executor, failure, times: int):
        self.inner, self.failure, self.times, self.calls = inner, failure, times, 0
        self.in_process = inner.in_process

    @property
    def runtime_memory_mb(self):
        return self.inner.runtime_memory_mb

    def submit(self, fn, task, resources=None):
        self.calls += 1
        chosen = self.failure if self.calls <= self.times else fn
        return self.inner.submit(chosen, task, resources)

    def shutdown(self):
        self.inner.shutdown()


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=3000, n_features=20, random_state=0)


def _clf(**params):
    return ServerlessSGDClassifier(random_state=0, **params)


def test_one_worker_gives_the_same_model_on_every_executor(data):
    X, y = data
    models = [
        _clf(n_workers=1, executor=name, max_iter=5, tol=None).fit(X, y) for name in EXECUTORS
    ]
    for model in models[1:]:
        np.testing.assert_array_equal(model.coef_, models[0].coef_)
        np.testing.assert_array_equal(model.intercept_, models[0].intercept_)


def test_small_fits_stay_in_process_as_one_sequential_worker_would_train(data, monkeypatch):
    from sklearn_cirrus.runtime import driver

    X, y = data
    home = _clf(n_workers=2, max_iter=5, tol=None).fit(X, y)
    assert home.fit_report_["path"] == "in-process" and home.fit_report_["invocations"] == 0
    assert home.fit_report_["samples"] == 5 * X.shape[0]
    monkeypatch.setattr(driver, "IN_PROCESS_MAX_BYTES", -1)
    away = _clf(n_workers=2, executor="sequential", max_iter=5, tol=None).fit(X, y)
    assert away.fit_report_["path"] == "workers" and away.fit_report_["invocations"] >= 10
    np.testing.assert_array_equal(home.coef_, away.coef_)
    # the workers add up a shard's losses piece by piece (their time budget): last bits
    np.testing.assert_allclose(home.loss_curve_, away.loss_curve_, rtol=1e-13)
    # the same minibatch steps: shards hold whole batches; the epoch's last one short, or
    # joined to the one before when shorter than half a batch
    whole, tail = divmod(X.shape[0], home.batch_size)
    batches_per_epoch = whole + (2 * tail >= home.batch_size)
    assert home.fit_report_["updates"] == away.fit_report_["updates"] == 5 * batches_per_epoch


def test_workers_asked_for_are_used_however_small_the_data(data):
    X, y = data
    for executor in ("processes", ThreadExecutor()):
        model = _clf(n_workers=2, executor=executor, max_iter=2, tol=None).fit(X, y)
        assert model.fit_report_["path"] == "workers"
    model = _clf(n_workers=2, store="shm", max_iter=2, tol=None).fit(X, y)
    assert model.fit_report_["path"] == "workers"


def test_sequential_fits_are_reproducible_with_several_workers(data):
    X, y = data
    first = _clf(n_workers=3, executor="sequential").fit(X, y)
    second = _clf(n_workers=3, executor="sequential").fit(X, y)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    assert first.loss_curve_ == second.loss_curve_


@pytest.mark.parametrize("name", EXECUTORS)
def test_async_workers_converge_on_every_executor(data, name, no_store_leak, always_fan_out):
    X, y = data
    model = _clf(n_workers=2, executor=name).fit(X, y)
    assert model.score(X, y) > 0.85
    assert model.fit_report_["invocations"] >= 2 * model.n_iter_
    assert model.fit_report_["samples"] >= model.n_iter_ * X.shape[0]


@pytest.mark.parametrize(
    "inner, failure, error",
    [
        (SequentialExecutor, explode, RuntimeError),
        (ThreadExecutor, explode, RuntimeError),
        (ProcessExecutor, explode, WorkerError),
        (ProcessExecutor, die, WorkerLost),
        (ProcessExecutor, allocate_too_much, WorkerOutOfMemory),
    ],
)
def test_failed_invocations_are_relaunched(data, inner, failure, error, no_store_leak):
    X, y = data
    executor = FailingExecutor(inner(), failure, times=2)
    model = _clf(n_workers=2, executor=executor).fit(X, y)
    assert model.fit_report_["failures"] == 2 == model.fit_report_["relaunches"]
    # each failure is told: the first line of what the worker raised, typed
    assert len(model.fit_report_["failure_reasons"]) == 2
    assert all(reason.startswith(error.__name__) for reason in model.fit_report_["failure_reasons"])
    assert model.score(X, y) > 0.85


@pytest.mark.parametrize(
    "inner, failure, error, message",
    [
        (SequentialExecutor, explode, WorkerError, "worker exploded on purpose"),
        (ProcessExecutor, explode, WorkerError, "worker exploded on purpose"),
        (ProcessExecutor, allocate_too_much, WorkerOutOfMemory, "worker_memory_mb=1024"),
    ],
)
def test_repeated_failure_is_raised_and_store_cleaned(
    data, inner, failure, error, message, no_store_leak
):
    X, y = data
    executor = FailingExecutor(inner(), failure, times=10**6)
    with pytest.raises(error, match=message) as caught:
        _clf(n_workers=1, executor=executor).fit(X, y)
    # the worker's own traceback reaches the user, in the message or the chained cause
    shown = "".join(traceback.format_exception(caught.value))
    assert f"in {failure.__name__}" in shown
    # a failure on every try ends the fit after max_retries=3 relaunches, and says so
    assert executor.calls == 4
    assert "4 of 4 worker invocations failed" in str(caught.value)
    assert len(memory._LIVE_STORES) == 0


def test_the_final_error_says_what_to_change(data):
    X, y = data
    executor = FailingExecutor(SequentialExecutor(), explode, times=10**6)
    with pytest.raises(WorkerError, match="in the data, the parameters or the code"):
        _clf(n_workers=2, executor=executor).fit(X, y)


@pytest.mark.parametrize(
    "error, advice",
    [
        (WorkerLost("exit code -9"), "killed from outside"),
        (WorkerOutOfMemory("over"), "Raise worker_memory_mb"),
        (WorkerTimeout("ended"), "Raise worker_timeout"),
        (ConnectionError("unreachable"), "check store="),
    ],
)
def test_each_kind_of_failure_gets_its_own_advice(error, advice):
    from sklearn_cirrus.runtime.driver import TrainingSettings, _raise_failure
    from sklearn_cirrus.store import OptimizerConfig

    settings = TrainingSettings(optimizer=OptimizerConfig())
    with pytest.raises(WorkerError, match=advice) as raised:
        _raise_failure(error, ["a", "b", "c", "d"], 5, settings)
    assert "4 of 5 worker invocations failed" in str(raised.value)
    assert isinstance(raised.value, type(error) if isinstance(error, WorkerError) else WorkerError)


def test_failures_are_tolerated_as_a_share_of_the_fit_not_per_slice():
    from sklearn_cirrus.runtime.driver import failure_budget

    # a few at the start, then half of the invocations launched so far
    assert failure_budget(1, 3) == 3 and failure_budget(40, 3) == 20


class FailingEveryOther(FailingExecutor):
    """The same slice fails 3 times in a row (a per-slice limit of 2 retries ended the
    fit there), then, once as many have succeeded, every fourth invocation fails."""

    def submit(self, fn, task, resources=None):
        self.calls += 1
        failing = self.calls <= 3 or (self.calls > 8 and self.calls % 4 == 1)
        return self.inner.submit(self.failure if failing else fn, task, resources)


def test_a_fit_survives_many_failures_of_one_slice_within_its_budget(data, always_fan_out):
    X, y = data
    executor = FailingEveryOther(SequentialExecutor(), explode, times=0)
    model = _clf(n_workers=1, executor=executor, max_iter=20, tol=None).fit(X, y)
    failures = model.fit_report_["failures"]
    assert failures >= 3 + 3 and model.n_iter_ == 20 and model.score(X, y) > 0.85


def test_a_killed_runtime_probe_is_tried_again(tmp_path, monkeypatch):
    from functools import partial

    from sklearn_cirrus.executors import processes

    probe = partial(die_at_first_probe, str(tmp_path / "probed"))
    monkeypatch.setattr(processes, "_runtime_mb_probe", probe)
    executor = ProcessExecutor()
    try:
        assert executor.runtime_memory_mb > 0
    finally:
        executor.shutdown()
    assert (tmp_path / "probed").exists()  # the first probe died


def _failing_starts(monkeypatch, failures: int):
    """Worker processes whose first ``failures`` starts fail as a dying forkserver's do
    (each tried again at once, rather than after a wait)."""
    from sklearn_cirrus.executors import processes

    monkeypatch.setattr(processes, "_START_BACKOFF_S", (0.0,) * len(processes._START_BACKOFF_S))
    real, left = processes._WarmProcess.__init__, [failures]

    def start(self, *args):
        if left[0] > 0:
            left[0] -= 1
            raise EOFError("unexpected EOF")  # multiprocessing.forkserver.read_signed's
        real(self, *args)

    monkeypatch.setattr(processes._WarmProcess, "__init__", start)


def test_a_process_that_cannot_start_is_a_lost_invocation(monkeypatch):
    from sklearn_cirrus.executors import processes

    X, y = make_classification(n_samples=3000, random_state=0)
    executor = ProcessExecutor()
    try:
        assert executor.runtime_memory_mb > 0  # (probed before the starts fail)
        # two invocations whose every try to start fails
        _failing_starts(monkeypatch, failures=2 * (len(processes._START_BACKOFF_S) + 1))
        clf = ServerlessSGDClassifier(executor=executor, n_workers=2, max_iter=2).fit(X, y)
    finally:
        executor.shutdown()
    report = clf.fit_report_
    assert report["failures"] == 2 and report["relaunches"] == 2
    assert all("could not start: EOFError" in r for r in report["failure_reasons"])
    assert clf.score(X, y) > 0.7


def test_a_start_the_moment_the_forkserver_is_killed_is_tried_again():
    # SIGKILLed, the real forkserver refuses connections for the milliseconds it takes
    # to go; multiprocessing starts a new one at the first try after that
    import os
    import signal
    from multiprocessing import forkserver

    from sklearn_cirrus.executors import WorkerResources

    executor = ProcessExecutor()
    try:
        assert executor.runtime_memory_mb > 0
        servers = set()
        for limit in range(5):
            servers.add(forkserver._forkserver._forkserver_pid)
            os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)
            # (limits no idle process has: a new process starts, at once)
            future = executor.submit(abs, -limit, WorkerResources(memory_mb=2048 + limit))
            assert future.result(timeout=60) == limit
        assert len(servers) == 5  # a new forkserver every time
    finally:
        executor.shutdown()


def test_a_pool_that_cannot_start_at_all_says_so(monkeypatch):
    X, y = make_classification(n_samples=3000, random_state=0)
    _failing_starts(monkeypatch, failures=10**6)
    executor = ProcessExecutor()
    try:
        with pytest.raises(WorkerLost, match="pool of worker processes cannot start"):
            ServerlessSGDClassifier(executor=executor, max_iter=2).fit(X, y)
    finally:
        executor.shutdown()


def test_hung_process_worker_is_ended_then_raised(data, no_store_leak):
    X, y = data
    executor = FailingExecutor(ProcessExecutor(), hang, times=10**6)
    with pytest.raises(WorkerTimeout, match="worker_timeout=1.0"):
        _clf(executor=executor, worker_timeout=1.0).fit(X, y)


@pytest.mark.parametrize("name", ["sequential", "threads"])
def test_workers_return_early_at_their_time_budget_and_are_relaunched(data, name, always_fan_out):
    X, y = data
    model = _clf(executor=name, worker_timeout=1e-4, max_iter=3, tol=None).fit(X, y)
    # every invocation stopped after one shard; the driver relaunched the rest
    report = model.fit_report_
    assert report["invocations"] > 2 * 3 and report["failures"] == 0
    # each invocation after an epoch's first ones continued the rest of one
    assert report["relaunches"] == report["invocations"] - 2 * 3 > 0
    assert model.n_iter_ == 3 and model.score(X, y) > 0.85


def test_a_fit_cut_into_pieces_by_its_time_budget_trains_the_same_model(data, always_fan_out):
    # one sequential worker: the pieces are the same minibatches in the same order
    X, y = data
    whole = _clf(executor="sequential", n_workers=1, worker_timeout=None, max_iter=3, tol=None)
    cut = _clf(executor="sequential", n_workers=1, worker_timeout=1e-4, max_iter=3, tol=None)
    whole.fit(X, y), cut.fit(X, y)
    # every invocation handed back the rest of its shard after one minibatch
    n_batches = 3 * sum(-(-len(part) // 256) for part in np.array_split(np.arange(3000), 4))
    assert cut.fit_report_["invocations"] >= n_batches > 3 * whole.fit_report_["invocations"]
    np.testing.assert_allclose(cut.coef_, whole.coef_, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_shard_longer_than_worker_timeout_is_trained_in_pieces(executor, tmp_path):
    # one shard that takes several times worker_timeout to train: trained whole, every
    # attempt would run out of time (the processes executor ends it); in pieces it is done
    from sklearn_cirrus import ServerlessMatrixFactorization, ShardedDataset

    rng = np.random.RandomState(0)
    X = rng.randint(0, 500, size=(400_000, 2))
    dataset = ShardedDataset.from_arrays(
        X, rng.uniform(1, 5, len(X)), str(tmp_path / "ratings"), shard_bytes=2**30
    )
    model = ServerlessMatrixFactorization(
        n_components=1024, executor=executor, n_workers=1, max_iter=1, tol=None, random_state=0
    )
    model.set_params(worker_timeout=1.0).fit(dataset)
    report = model.fit_report_
    assert model.n_iter_ == 1 and report["samples"] >= len(X)
    assert report["invocations"] - report["failures"] >= 2


def test_worker_memory_too_small_for_a_batch_names_the_parameter(data, always_fan_out):
    X, y = data
    with pytest.raises(ValueError, match=r"worker_memory_mb=100 is too small .* at least \d+ MB"):
        _clf(worker_memory_mb=100).fit(X, y)
    with pytest.raises(ValueError, match="batch_size=256"):
        _clf(worker_memory_mb=100).fit(X, y)


def test_tol_none_runs_every_epoch_and_records_the_curve(data):
    X, y = data
    model = _clf(tol=None, max_iter=4).fit(X, y)
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_verbose_prints_progress(data, capsys):
    X, y = data
    _clf(verbose=1, max_iter=2, tol=None).fit(X, y)
    assert capsys.readouterr().out.count("-- Epoch") == 2


def test_report_accounts_for_workers(data, always_fan_out):
    X, y = data
    report = _clf(worker_memory_mb=2048).fit(X, y).fit_report_
    assert report["gb_seconds"] == pytest.approx(2 * report["worker_seconds"])
    assert report["estimated_cost_usd"] > 0
    assert report["peak_worker_memory_mb"] > 0
    phases = sum(report[f"seconds_{p}"] for p in ("pull", "compute", "push"))
    assert 0 < phases <= report["worker_seconds"]


def test_stop_rule_counts_epochs_without_improvement():
    rule = StopRule(tol=0.01, n_iter_no_change=2)
    assert [rule.update(x) for x in (1.0, 0.5, 0.495, 0.6)] == ["continue"] * 3 + ["stop"]
    adaptive = StopRule(tol=0.01, n_iter_no_change=1, adaptive=True, eta0=1e-5)
    assert [adaptive.update(x) for x in (1.0, 1.0, 1.0, 1.0)] == [
        "continue",
        "decay",
        "decay",
        "stop",
    ]
    validation = StopRule(tol=0.0, n_iter_no_change=1, use_validation=True)
    assert validation.update(0.1, score=0.8) == "continue"
    assert validation.update(0.1, score=0.7) == "stop"
    assert StopRule(tol=None, n_iter_no_change=1).update(1.0) == "continue"


def test_process_workers_train_on_data_far_larger_than_their_memory(no_store_leak):
    X, y = make_classification(n_samples=400_000, n_features=50, random_state=0)
    headroom_mb = 64
    limit = make_executor("processes")[0].runtime_memory_mb + headroom_mb
    assert X.nbytes / 2**20 > 2 * headroom_mb  # the dataset could never fit in a worker
    clf = _clf(executor="processes", worker_memory_mb=limit, max_iter=1, tol=None).fit(X, y)
    assert clf.fit_report_["failures"] == 0 and clf.score(X, y) > 0.85


def test_data_url_stages_shards_there_and_removes_them(data, tmp_path):
    X, y = data
    clf = _clf(executor="processes", data_url=str(tmp_path / "staging")).fit(X, y)
    assert clf.score(X, y) > 0.85
    assert list((tmp_path / "staging").iterdir()) == []


def test_worker_enforces_its_memory_budget_where_the_executor_cannot(rng):
    from sklearn_cirrus.data import remove, stage
    from sklearn_cirrus.kernels import LinearKernel
    from sklearn_cirrus.runtime.worker import WorkerTask, run_worker
    from sklearn_cirrus.store import MemoryStore, OptimizerConfig

    X = rng.normal(size=(40_000, 200))  # 61 MB, in shards of about 4 MB
    y = (X[:, 0] > 0).astype(int)
    data = stage(X, y, np.ones(len(y)), "memory://budget-test", batch_size=256)
    kernel = LinearKernel("log_loss", 200)
    store = MemoryStore()
    store.create("model", kernel.init_params()["model"], OptimizerConfig())
    task = WorkerTask(store.handle(), data, kernel, tuple(range(data.n_shards)))
    try:
        generous = run_worker(replace(task, memory_budget_mb=10_000))
        assert generous.shards_done == data.n_shards
        # a budget already spent (malloc may reuse freed pages, so growth can be nil)
        with pytest.raises(WorkerOutOfMemory, match="over the -1 MB worker_memory_mb leaves"):
            run_worker(replace(task, memory_budget_mb=-1.0))
    finally:
        remove(data)
        store.delete()


class _UnreachableStore(memory.MemoryStore):
    """A store whose namespace cannot be deleted at the end (as when Redis goes away)."""

    def delete(self):
        super().delete()
        raise ConnectionError("store unreachable")


@pytest.mark.parametrize("fit_fails", [False, True])
def test_cleanup_runs_every_step_and_keeps_the_fits_own_error(
    data, tmp_path, monkeypatch, always_fan_out, fit_fails
):
    # the store's deletion fails: the shards must go all the same, and a fit that failed
    # raises its own error (the cleanup's becomes a warning)
    from sklearn_cirrus.runtime import driver

    X, y = data
    monkeypatch.setattr(driver, "make_store", lambda spec, in_process: _UnreachableStore())
    folder = tmp_path / "shards"
    clf = _clf(executor="sequential", data_url=str(folder), max_iter=2)
    if fit_fails:
        clf.set_params(executor=FailingExecutor(SequentialExecutor(), explode, times=10**6))
        with pytest.warns(RuntimeWarning, match="store unreachable"):
            with pytest.raises(WorkerError, match="worker exploded on purpose"):
                clf.fit(X, y)
    else:
        with pytest.raises(ConnectionError, match="store unreachable"):
            clf.fit(X, y)
    assert not list(folder.glob("*"))


def test_a_failing_invocation_raises_its_own_error_not_its_last_exchanges():
    # a worker's last exchange with a remote store is finished on the way out; when the
    # invocation is failing already, its own error is the one the driver sees
    from sklearn_cirrus.runtime.worker import _close

    class SendingFails:
        def close(self):
            raise ConnectionError("store gone")

    with pytest.raises(ValueError, match="bad shard"):
        try:
            raise ValueError("bad shard")
        finally:
            _close(SendingFails())
    with pytest.raises(ConnectionError, match="store gone"):  # alone, it is raised
        _close(SendingFails())


def test_the_invocations_of_the_last_epoch_are_told_so(data):
    # the driver reads the model as the fit's last epoch ends: its workers fold the
    # store's log first (runtime.trainers.CLOSING_FOLD_LOG_SIZE)
    X, y = data
    told = []

    class Recording(SequentialExecutor):
        def submit(self, fn, task, resources=None):
            told.append(task.last_epoch)
            return super().submit(fn, task, resources)

    _clf(executor=Recording(), n_workers=2, max_iter=3, tol=None).fit(X, y)
    assert told == [False] * 4 + [True] * 2


def test_a_server_stores_worker_has_room_to_load_its_replicas_log():
    from sklearn_cirrus.kernels.linear import LinearKernel
    from sklearn_cirrus.runtime.driver import (
        TrainingSettings,
        check_worker_memory,
        worker_memory_needed,
    )
    from sklearn_cirrus.runtime.trainers import FOLD_LOG_SIZE
    from sklearn_cirrus.store import OptimizerConfig

    kernel = LinearKernel(loss="log_loss", n_features=2**20)
    replica_mb = kernel.worker_model_bytes(256, True) / 2**20
    settings = TrainingSettings(optimizer=OptimizerConfig(), store="shm")
    shm = worker_memory_needed(kernel, settings, shard_bytes=2**20, sparse=True)[0]
    for server in ("redis://127.0.0.1:6379/0", "ray"):
        remote = worker_memory_needed(
            kernel, replace(settings, store=server), shard_bytes=2**20, sparse=True
        )[0]
        # the model's arrays as they arrive, and up to FOLD_LOG_SIZE models of entries
        assert remote - shm == pytest.approx((1 + FOLD_LOG_SIZE) * replica_mb, abs=2)
    data = dict(shard_bytes=2**20, sparse=True, runtime_memory_mb=128)
    enough_for_shm = replace(settings, worker_memory_mb=128 + shm)
    check_worker_memory(kernel, enough_for_shm, **data)
    on_redis = replace(enough_for_shm, store="redis://127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="too small for one batch.*rows it works on and loads"):
        check_worker_memory(kernel, on_redis, **data)
