"""Executors run invocations and turn broken limits into typed failures, never hangs."""

import os
import signal
import sys
import time

import numpy as np
import pytest

from sklearn_cirrus import WorkerError, WorkerLost, WorkerOutOfMemory, WorkerTimeout
from sklearn_cirrus.executors import (
    ProcessExecutor,
    SequentialExecutor,
    ThreadExecutor,
    WorkerResources,
    make_executor,
)


def square(x):
    return x * x


def allocate_mb(mb):
    block = np.ones(mb * 2**20 // 8)
    return float(block.sum())


def sleep_for(seconds):
    time.sleep(seconds)


def kill_self(_):
    os.kill(os.getpid(), signal.SIGKILL)


def process_id(_):
    return os.getpid()


def raise_value_error(message):
    raise ValueError(message)


@pytest.fixture(scope="module")
def processes():
    executor = ProcessExecutor()
    yield executor
    executor.shutdown()


@pytest.mark.parametrize("executor", [SequentialExecutor(), ThreadExecutor(), ProcessExecutor()])
def test_executor_returns_results(executor):
    with executor:
        futures = [executor.submit(square, i) for i in range(4)]
        assert [f.result(timeout=30) for f in futures] == [0, 1, 4, 9]


@pytest.mark.parametrize("executor", [SequentialExecutor(), ThreadExecutor()])
def test_in_process_executors_pass_exceptions_through(executor):
    with executor:
        with pytest.raises(ValueError, match="boom"):
            executor.submit(raise_value_error, "boom").result(timeout=30)


def test_process_worker_over_memory_limit_is_out_of_memory(processes):
    limit = processes.runtime_memory_mb + 100
    future = processes.submit(allocate_mb, 400, WorkerResources(memory_mb=limit))
    with pytest.raises(WorkerOutOfMemory, match=f"worker_memory_mb={limit}"):
        future.result(timeout=60)
    # the same call within its limit succeeds: the limit, not the code, failed it
    assert processes.submit(allocate_mb, 20, WorkerResources(memory_mb=limit)).result(60) > 0


def test_process_limit_below_runtime_is_refused_clearly(processes):
    future = processes.submit(square, 3, WorkerResources(memory_mb=50))
    with pytest.raises(WorkerOutOfMemory, match="needs to start"):
        future.result(timeout=60)


def test_process_worker_past_timeout_is_ended(processes):
    started = time.perf_counter()
    future = processes.submit(sleep_for, 60, WorkerResources(timeout_s=1.0))
    with pytest.raises(WorkerTimeout, match="worker_timeout=1.0"):
        future.result(timeout=30)
    assert time.perf_counter() - started < 10


def test_killed_process_worker_is_lost(processes):
    with pytest.raises(WorkerLost, match="exit code -9"):
        processes.submit(kill_self, None).result(timeout=60)


def test_process_worker_error_carries_its_traceback(processes):
    with pytest.raises(WorkerError) as caught:
        processes.submit(raise_value_error, "boom").result(timeout=60)
    assert "ValueError: boom" in str(caught.value)
    assert "raise_value_error" in str(caught.value)


def test_make_executor_resolves_names_and_instances():
    executor, owned = make_executor("processes")
    # one warm pool serves every fit of this interpreter; fits do not shut it down
    assert isinstance(executor, ProcessExecutor) and not owned
    assert make_executor("processes")[0] is executor
    assert make_executor("threads")[1]
    mine = ThreadExecutor()
    assert make_executor(mine) == (mine, False)
    assert isinstance(make_executor(None)[0], ThreadExecutor)
    with pytest.raises(ValueError, match="valid executors are .*processes.*sequential.*threads"):
        make_executor("lambda")


def test_process_executor_refuses_fork():
    with pytest.raises(ValueError, match="forkserver"):
        ProcessExecutor(start_method="fork")


def test_warm_processes_are_reused_and_broken_ones_replaced():
    with ProcessExecutor() as executor:
        first = executor.submit(process_id, None).result(timeout=60)
        assert executor.submit(process_id, None).result(timeout=60) == first
        with pytest.raises(WorkerError):
            executor.submit(raise_value_error, "boom").result(timeout=60)
        # an error leaves the process usable; a death does not
        assert executor.submit(process_id, None).result(timeout=60) == first
        with pytest.raises(WorkerLost):
            executor.submit(kill_self, None).result(timeout=60)
        assert executor.submit(process_id, None).result(timeout=60) != first


def test_each_memory_limit_gets_its_own_processes():
    with ProcessExecutor() as executor:
        unlimited = executor.submit(process_id, None).result(timeout=60)
        limited = WorkerResources(memory_mb=executor.runtime_memory_mb + 200)
        assert executor.submit(process_id, None, limited).result(timeout=60) != unlimited


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[dask\]'"):
        make_executor("dask://127.0.0.1:8786")


def test_missing_lithops_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lithops", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[lithops\]'"):
        make_executor("lithops")


def test_missing_ray_names_the_extra(monkeypatch):
    from sklearn_cirrus.executors import RayExecutor
    from sklearn_cirrus.store import make_store

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[ray\]'"):
        RayExecutor()
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[ray\]'"):
        make_store("ray", in_process=False)


@pytest.mark.parametrize("executor", [ThreadExecutor(), ProcessExecutor()])
def test_used_executors_pickle_as_their_settings(executor):
    import pickle

    with executor:
        assert executor.submit(square, 3).result(timeout=60) == 9
        copy = pickle.loads(pickle.dumps(executor))
        assert copy.submit(square, 4).result(timeout=60) == 16
        copy.shutdown()


def test_a_registered_executor_is_built_by_name_for_every_fit(monkeypatch):
    from sklearn.datasets import make_classification

    from sklearn_cirrus import ServerlessSGDClassifier, executors
    from sklearn_cirrus.executors import register_executor

    monkeypatch.setattr(executors, "_REGISTRY", dict(executors._REGISTRY))
    built = []

    class CountingExecutor(SequentialExecutor):
        def submit(self, fn, *args, **kwargs):
            self.submitted += 1
            return super().submit(fn, *args, **kwargs)

    def factory(spec):
        executor = CountingExecutor()
        executor.submitted = 0
        built.append((spec, executor))
        return executor

    register_executor("counting", factory)
    X, y = make_classification(n_samples=300, random_state=0)
    clf = ServerlessSGDClassifier(executor="counting://cluster-a", max_iter=3, tol=None)
    clf.fit(X, y)
    assert [spec for spec, _ in built] == ["counting://cluster-a"]
    assert built[0][1].submitted == clf.fit_report_["invocations"] > 0
    with pytest.raises(ValueError, match="unknown executor 'nothing'.*counting"):
        make_executor("nothing")


def test_process_workers_start_from_a_script_read_from_stdin(tmp_path):
    # python - < script.py names no main file: the workers must not try to import it
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(
        "import numpy as np\n"
        "from sklearn_cirrus import ServerlessSGDClassifier\n"
        "rng = np.random.RandomState(0)\n"
        "X = rng.normal(size=(400, 5)); y = (X[:, 0] > 0).astype(int)\n"
        "clf = ServerlessSGDClassifier(executor='processes', n_workers=2, random_state=0)\n"
        "print('score', clf.fit(X, y).score(X, y))\n"
    )
    with open(script) as stdin:
        done = subprocess.run(
            [sys.executable, "-"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) > 0.9


def _run_script(tmp_path, source: str) -> str:
    """Run ``source`` as a script file in a fresh interpreter; its standard output."""
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_script_without_a_main_guard_runs_as_with_loky(tmp_path):
    # worker processes never import the main script: its fit runs once, in the driver
    out = _run_script(
        tmp_path,
        "import numpy as np\n"
        "from sklearn_cirrus import ServerlessSGDClassifier\n"
        "X = np.random.RandomState(0).normal(size=(400, 5)); y = (X[:, 0] > 0).astype(int)\n"
        "clf = ServerlessSGDClassifier(executor='processes', n_workers=2, random_state=0)\n"
        "print('score', clf.fit(X, y).score(X, y))\n",
    )
    assert out.count("score") == 1 and float(out.split()[-1]) > 0.9


def test_what_the_main_script_defines_reaches_the_workers(tmp_path):
    # a function of the script's own, run by the workers: carried by value, not imported
    out = _run_script(
        tmp_path,
        "from sklearn_cirrus.executors import ProcessExecutor\n"
        "def triple(x):\n"
        "    return 3 * x\n"
        "executor = ProcessExecutor()\n"
        "print('result', executor.submit(triple, 14).result())\n"
        "executor.shutdown()\n",
    )
    assert out.split() == ["result", "42"]


@pytest.mark.parametrize("interleaves", [True, False])
def test_fits_in_a_throttled_pool_take_turns_first_come_first_served(interleaves):
    import threading
    import time

    from sklearn_cirrus.executors.throttle import ThrottledExecutor

    pool = ThrottledExecutor(ThreadExecutor(), 1, hosts_small_fits=True)
    pool.interleaves_fits = interleaves
    order = []

    def fit(name, epochs=2):
        with pool.slot():
            for epoch in range(1, epochs + 1):
                order.append(f"{name}{epoch}")
                if epoch == 1 and name == "A":  # the others queue up meanwhile
                    others = [threading.Thread(target=fit, args=(n,)) for n in "BC"]
                    for other in others:
                        other.start()
                        deadline = time.monotonic() + 30
                        while len(pool._waiting) < others.index(other) + 1:
                            assert time.monotonic() < deadline
                            time.sleep(0.001)
                if epoch < epochs:
                    pool.pass_turn()
        return locals().get("others", [])

    for other in fit("A"):
        other.join()
    # one slot: the fits waiting go in the order they came, an epoch each when the fits
    # interleave (early stopping compares them at the same epoch), else a whole fit each
    expected = (
        ["A1", "B1", "C1", "A2", "B2", "C2"]
        if interleaves
        else ["A1", "A2", "B1", "B2", "C1", "C2"]
    )
    assert order == expected
    assert pool.peak_in_flight == 1 and pool.in_flight == 0 and pool.hosted == 3


def test_a_fit_waiting_on_others_lends_them_its_slot():
    import threading

    from sklearn_cirrus.executors.throttle import ThrottledExecutor

    pool = ThrottledExecutor(ThreadExecutor(), 1, hosts_small_fits=True)
    order, other_done = [], threading.Event()

    def other():
        with pool.slot():
            order.append("B")
        other_done.set()

    with pool.slot():
        order.append("A before")
        runner = threading.Thread(target=other)
        with pool.lend_slot():  # one slot: B runs only because A lends it
            runner.start()
            assert other_done.wait(30)
        order.append("A after")
        assert pool.in_flight == 1
    runner.join()
    with pool.lend_slot():  # a thread holding no slot has none to lend
        assert pool.in_flight == 0
    assert order == ["A before", "B", "A after"] and pool.peak_in_flight == 1
