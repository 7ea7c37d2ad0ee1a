"""Nothing a fit puts on this machine is readable by others, and nothing stays behind:
not after SIGTERM, and not after SIGKILL once the next fit or the cleanup command ran."""

import json
import os
import signal
import socket
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
            executor="processes", store=sys.argv[1], n_workers=1, max_iter=10**6, tol=None,
        ).set_callbacks(Announce()).fit(X, y)
    """
)


def _start_driver(tmp_path, store="shm") -> subprocess.Popen:
    """A real driver process, in the middle of a fit on ``store`` once this returns."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    errors = open(tmp_path / "stderr", "w+")  # noqa: SIM115 (read back on failure)
    driver = subprocess.Popen(
        [sys.executable, str(script), store], stdout=subprocess.PIPE, stderr=errors, text=True
    )
    if driver.stdout.readline().strip() != "epoch":
        errors.seek(0)
        pytest.fail(f"the driver did not start its fit: {errors.read()}")
    # its shards, and its store where the store is local
    assert len(own_folders(driver.pid)) == (2 if store == "shm" else 1)
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


# Redis: a fit records its namespace's owner; keys of owners gone are removed


def redis_client(url):
    import redis

    return redis.Redis.from_url(url)


def owned_namespaces(client, pid: int) -> list[str]:
    from sklearn_cirrus.store.redis_owners import OWNERS

    return [
        namespace.decode()
        for namespace, owner in client.hgetall(OWNERS).items()
        if json.loads(owner)["pid"] == pid
    ]


def keys_of(client, namespace: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{namespace}:*"))


def test_what_sigkill_leaves_on_redis_goes_with_the_cleanup_command(tmp_path, redis_url, capsys):
    client = redis_client(redis_url)
    driver = _start_driver(tmp_path, store=redis_url)
    (namespace,) = owned_namespaces(client, driver.pid)
    driver.kill()
    driver.wait(timeout=60)
    assert len(keys_of(client, namespace)) > 0  # nothing could run: the model stays...
    main(["cleanup", "--store", redis_url, "--dry-run"])
    told = capsys.readouterr().out
    assert f"would remove {namespace} (" in told and f"pid {driver.pid}" in told
    assert len(keys_of(client, namespace)) > 0
    main(["cleanup", "--store", redis_url])
    assert f"removed {namespace} (" in capsys.readouterr().out
    assert keys_of(client, namespace) == []  # ... until the command
    assert owned_namespaces(client, driver.pid) == []


def _record(client, namespace: str, **owner) -> None:
    from sklearn_cirrus.store.redis_owners import OWNERS

    client.hset(OWNERS, namespace, json.dumps(owner))
    client.set(f"{namespace}:w:params", b"x" * 100)


def test_only_namespaces_whose_owner_is_gone_are_removed(redis_url):
    from sklearn_cirrus.store.redis_owners import STALE_SECONDS, leftovers, remove_leftovers

    client = redis_client(redis_url)
    now = float(client.time()[0])
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    here = socket.gethostname()
    _record(client, "cirrus:t-dead", host=here, pid=child.pid, start=7, beat=now)
    _record(client, "cirrus:t-alive", host=here, pid=os.getpid(), start=0, beat=0.0)
    _record(client, "cirrus:t-silent", host="elsewhere", pid=1, beat=now - 2 * STALE_SECONDS)
    _record(client, "cirrus:t-beating", host="elsewhere", pid=1, beat=now)
    client.hset("cirrus:owners", "cirrus:t-foreign", "not json")
    try:
        gone = {leftover.namespace: leftover.keys for leftover in leftovers(client)}
        assert gone == {"cirrus:t-dead": 1, "cirrus:t-silent": 1}
        remove_leftovers(client)
        for namespace in ("cirrus:t-dead", "cirrus:t-silent"):
            assert keys_of(client, namespace) == []
        for namespace in ("cirrus:t-alive", "cirrus:t-beating"):
            assert len(keys_of(client, namespace)) == 1
        assert not client.hexists("cirrus:owners", "cirrus:t-dead")
        assert client.hexists("cirrus:owners", "cirrus:t-foreign")
    finally:
        for namespace in ("alive", "beating", "foreign"):
            client.delete(f"cirrus:t-{namespace}:w:params")
            client.hdel("cirrus:owners", f"cirrus:t-{namespace}")


def test_a_fit_on_redis_beats_then_removes_its_record_and_what_dead_fits_left(
    redis_url, binary_data, always_fan_out, monkeypatch
):
    from sklearn_cirrus.store import redis_owners

    client = redis_client(redis_url)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    _record(client, "cirrus:t-left", host=socket.gethostname(), pid=child.pid, start=7, beat=0.0)
    beats = []
    recorded = redis_owners.record_owner
    monkeypatch.setattr(redis_owners, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(redis_owners, "record_owner", lambda *a: (beats.append(a[1]), recorded(*a)))
    X, y = binary_data
    ServerlessSGDClassifier(
        executor="threads", store=redis_url, max_iter=30, tol=None, random_state=0
    ).fit(X, y)
    assert keys_of(client, "cirrus:t-left") == []
    assert len(beats) > 1 and len(set(beats)) == 1  # recorded, then beating
    assert owned_namespaces(client, os.getpid()) == []
    assert keys_of(client, beats[0]) == []


def test_cleanup_of_a_store_that_is_not_redis_says_so(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["cleanup", "--store", "shm"])
    assert exited.value.code == 2
    assert "--store takes a Redis server's URL" in capsys.readouterr().err
