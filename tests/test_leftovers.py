"""Nothing a fit puts on this machine is readable by others, and nothing stays behind:
not after SIGTERM, and not after SIGKILL once the next fit or the cleanup command ran."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sklearn_cirrus import ServerlessSGDClassifier
from sklearn_cirrus.__main__ import main
from sklearn_cirrus.epoch_callbacks import EpochCallback
from sklearn_cirrus.namespaces import (
    leftovers,
    namespace_name,
    owner_is_running,
    remove_leftovers,
    shared_memory_root,
)


def own_folders(pid: int) -> set[Path]:
    return set(shared_memory_root().glob(f"sklearn-cirrus-{pid}-*"))


class RecordModes(EpochCallback):
    """At every epoch, the modes of this process's folders and their files."""

    def __init__(self):
        self.folders, self.files = {}, {}

    def on_epoch(self, fitted_estimator, X):
        for folder in own_folders(os.getpid()):
            self.folders[folder] = stat.S_IMODE(folder.stat().st_mode)
            for f in folder.iterdir():
                self.files[f] = stat.S_IMODE(f.stat().st_mode)


def test_a_running_fit_keeps_its_shards_and_store_private(binary_data, no_store_leak):
    X, y = binary_data
    watch = RecordModes()
    clf = ServerlessSGDClassifier(
        executor="processes", store="shm", n_workers=1, max_iter=2, tol=None, random_state=0
    )
    clf.set_callbacks(watch).fit(X, y)
    # two folders (shards and the store), files in both: parameters, counters, locks
    assert len(watch.folders) == 2 and len(watch.files) > 4
    assert set(watch.folders.values()) == {0o700}
    assert set(watch.files.values()) == {0o600}, {
        f.name: oct(m) for f, m in watch.files.items() if m != 0o600
    }


def test_a_namespace_names_its_owner():
    assert owner_is_running(namespace_name())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"sklearn-cirrus-{child.pid}-1-{'0' * 32}"
    assert not owner_is_running(dead)
    # the same id, started at another time: a later process, not the owner
    reused = f"sklearn-cirrus-{os.getpid()}-1-{'0' * 32}"
    assert not owner_is_running(reused)
    assert owner_is_running("sklearn-cirrus-someone-elses")


def test_leftovers_of_dead_owners_only_are_removed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"sklearn-cirrus-{child.pid}-7-{'a' * 32}"
    alive = tmp_path / namespace_name()
    unrelated = tmp_path / "sklearn-cirrus-manual"
    for folder in (dead, alive, unrelated):
        folder.mkdir()
        (folder / "x.npy").write_bytes(b"0" * 1000)
    assert leftovers(tmp_path) == [dead]
    assert remove_leftovers(tmp_path) == [(dead, 1000)]
    assert not dead.exists() and alive.exists() and unrelated.exists()


DRIVER = textwrap.dedent(
    """
    import sys, numpy as np
    from sklearn_cirrus import ServerlessSGDClassifier
    from sklearn_cirrus.epoch_callbacks import EpochCallback

    class Announce(EpochCallback):
        def on_epoch(self, fitted_estimator, X):
            print("epoch", flush=True)

    if __name__ == "__main__":
        rng = np.random.RandomState(0)
        X = rng.normal(size=(20000, 20))
        y = (X[:, 0] > 0).astype(int)
        ServerlessSGDClassifier(
            executor="processes", store="shm", n_workers=1, max_iter=10**6, tol=None,
        ).set_callbacks(Announce()).fit(X, y)
    """
)


def _start_driver(tmp_path) -> subprocess.Popen:
    """A real driver process, in the middle of a fit once this returns."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    errors = open(tmp_path / "stderr", "w+")  # noqa: SIM115 (read back on failure)
    driver = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=errors, text=True
    )
    if driver.stdout.readline().strip() != "epoch":
        errors.seek(0)
        pytest.fail(f"the driver did not start its fit: {errors.read()}")
    assert len(own_folders(driver.pid)) == 2  # its shards and its store
    return driver


def test_sigterm_ends_a_fit_like_sigint_with_nothing_left(tmp_path):
    driver = _start_driver(tmp_path)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=60) == 128 + signal.SIGTERM
    assert own_folders(driver.pid) == set()


def test_what_sigkill_leaves_goes_with_the_cleanup_command(tmp_path):
    driver = _start_driver(tmp_path)
    driver.kill()
    driver.wait(timeout=60)
    assert len(own_folders(driver.pid)) == 2  # nothing could run: shards and store stay...
    main(["cleanup"])
    assert own_folders(driver.pid) == set()  # ... until the command


def test_the_next_fit_removes_what_a_dead_process_left(binary_data):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    left = shared_memory_root() / f"sklearn-cirrus-{child.pid}-7-{'c' * 32}"
    left.mkdir()
    (left / "shard-000000.npz").write_bytes(b"0" * 1000)
    X, y = binary_data
    ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None).fit(X, y)
    assert not left.exists()


def test_cleanup_command_dry_run_lists_and_keeps(tmp_path, capsys):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"sklearn-cirrus-{child.pid}-7-{'b' * 32}"
    dead.mkdir()
    main(["cleanup", "--root", str(tmp_path), "--dry-run"])
    assert f"would remove {dead}" in capsys.readouterr().out and dead.exists()
    main(["cleanup", "--root", str(tmp_path)])
    told = capsys.readouterr().out
    assert f"removed {dead} (" in told and "1 leftover folder(s) removed" in told
    assert not dead.exists()
    main(["cleanup", "--root", str(tmp_path)])  # nothing left: says so
    assert "0 leftover folder(s) removed, 0.0 MB freed" in capsys.readouterr().out


def test_sigterm_handler_is_installed_only_during_a_fit_and_over_the_default(binary_data):
    X, y = binary_data
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    seen = []

    class Look(EpochCallback):
        def on_epoch(self, fitted_estimator, X):
            seen.append(signal.getsignal(signal.SIGTERM))

    ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None).set_callbacks(Look()).fit(
        X, y
    )
    assert seen and seen[0] not in (signal.SIG_DFL, None)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    # a handler of the user's own stays in place
    mine = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        users = signal.getsignal(signal.SIGTERM)
        seen.clear()
        ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None).set_callbacks(
            Look()
        ).fit(X, y)
        assert seen == [users]
    finally:
        signal.signal(signal.SIGTERM, mine)
