"""Shared fixtures: the real datasets, real servers on loopback, a leak check for stores."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def dataset_path(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{name} not found in {DATASETS} (the project's shared datasets folder)")
    return path


@pytest.fixture(scope="session")
def a9a():
    """(X_train, y_train, X_test, y_test) of LIBSVM a9a, labels 0/1, CSR float64."""
    X, y = load_svmlight_file(str(dataset_path("a9a.libsvm.gz")), n_features=123)
    X_test, y_test = load_svmlight_file(str(dataset_path("a9a_t.libsvm.gz")), n_features=123)
    return X, (y > 0).astype(int), X_test, (y_test > 0).astype(int)


@pytest.fixture(scope="session")
def a9a_small(a9a):
    """The first 4,000 rows of a9a's training set: quick yet real."""
    X, y, X_test, y_test = a9a
    return X[:4000], y[:4000], X_test, y_test


@pytest.fixture
def no_store_leak():
    """Fail a test that leaves shared-memory namespaces behind."""
    shm = Path("/dev/shm")

    def namespaces():
        # only this process's: other test runs on the machine make their own
        return set(shm.glob(f"sklearn-cirrus-{os.getpid()}-*")) if shm.is_dir() else set()

    before = namespaces()
    yield
    assert namespaces() - before == set(), "a fit left its store namespace behind"


@pytest.fixture
def always_fan_out(monkeypatch):
    """Small fits on threads or sequentially fan out to workers, as large ones do (a
    search's too)."""
    from sklearn_cirrus import model_selection
    from sklearn_cirrus.runtime import driver

    monkeypatch.setattr(driver, "IN_PROCESS_MAX_BYTES", -1)
    monkeypatch.setattr(model_selection, "LOCAL_SEARCH_IN_PROCESS_MAX_BYTES", -1)


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_server(binary: str, install_hint: str) -> str:
    """The path of a server's (or a browser's) binary; without it, skip locally but fail
    in CI, where .ci/run installs it."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} not found ({install_hint}): this test needs the real one"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """A real redis-server on a free loopback port with ``options`` (``tls``: on its TLS
    port only), that a test can also restart (it comes back empty, as without
    persistence)."""

    def __init__(self, folder: Path, *options: str, tls: bool = False):
        self.binary = require_server("redis-server", "apt-get install redis-server")
        self.port = _free_port()
        ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        self.command = [self.binary, *ports, "--bind", "127.0.0.1", "--save", ""]
        self.command += ["--appendonly", "no", "--dir", str(folder), *options]
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def redis_server(folder: Path, *options: str, tls: bool = False):
    """A :class:`RedisServer` running for the block; yields its port."""
    server = RedisServer(folder, *options, tls=tls)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, for the whole session."""
    pytest.importorskip("redis", reason="pip install sklearn-cirrus[redis]")
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def s3_options():
    """A real S3-compatible server (moto's) on a free loopback port, for the whole session:
    the ``storage_options`` that reach it, with a bucket ``test`` made."""
    binary = require_server("moto_server", "pip install 'moto[server]'")
    s3fs = pytest.importorskip("s3fs", reason="pip install s3fs")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"moto_server did not start on port {port}")
            time.sleep(0.1)
    # a bucket in the server's default region (s3fs's mkdir names a location moto refuses)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/test", method="PUT"))
    assert s3fs.S3FileSystem(**options).exists("test")
    yield options
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def binary_data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=2000, n_features=20, random_state=0)


@pytest.fixture(scope="session")
def dask_client():
    """A distributed.LocalCluster of two worker processes on loopback, no dashboard."""
    distributed = pytest.importorskip("distributed", reason="pip install sklearn-cirrus[dask]")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit="2GiB",
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def _routable_address() -> str | None:
    """The address this machine would use towards the outside, if it has a route at all.

    A UDP ``connect`` only picks a route; it sends nothing.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        return probe.getsockname()[0]


@pytest.fixture(scope="session")
def ray_executor():
    """A local Ray with two CPUs whose workers can import the tests.

    Ray binds to the machine's outward address whenever it has one (it replaces even an
    explicit 127.0.0.1), so its tests run only where that address is loopback: inside the
    loopback-only network namespace ``.ci/run`` makes for the test suite.
    """
    pytest.importorskip("ray", reason="pip install sklearn-cirrus[ray]")
    address = _routable_address()
    if address is not None and not address.startswith("127."):
        message = (
            f"Ray would serve on {address}, not loopback: run the tests in a loopback-only "
            "network namespace, as .ci/run does (unshare --net)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from sklearn_cirrus.executors import RayExecutor

    executor = RayExecutor(
        num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}}
    )
    yield executor
    executor.shutdown()


# Lithops' localhost backend must run this interpreter, not whichever python is on PATH
LITHOPS_LOCALHOST = {
    "lithops": {"backend": "localhost", "storage": "localhost", "log_level": None},
    "localhost": {"runtime": sys.executable, "worker_processes": 2, "version": 1},
}


@pytest.fixture
def lithops_executor():
    pytest.importorskip("lithops", reason="pip install sklearn-cirrus[lithops]")
    from sklearn_cirrus.executors import LithopsExecutor

    executor = LithopsExecutor(LITHOPS_LOCALHOST)
    yield executor
    executor.shutdown()


class _Mirror:
    """An HTTP server on 127.0.0.1 serving ``folder``, counting the requests it answers."""

    def __init__(self, folder):
        self.requests = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                super().do_GET()

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path):
    """The published dataset files, served on loopback as their sites lay them out."""
    folder = tmp_path / "published"
    folder.mkdir()
    for name, shared in (("a9a", "a9a.libsvm.gz"), ("a9a.t", "a9a_t.libsvm.gz")):
        with gzip.open(dataset_path(shared)) as src, open(folder / name, "wb") as out:
            shutil.copyfileobj(src, out)
    with gzip.open(dataset_path("ml-latest-small_ratings.csv.gz")) as src:
        ratings = src.read()
    with zipfile.ZipFile(folder / "ml-latest-small.zip", "w") as archive:
        archive.writestr("ml-latest-small/ratings.csv", ratings)
    # MovieLens 100K's layout (tab-separated u.data), made of the same ratings
    rows = [line.split(b",")[:3] for line in ratings.splitlines()[1:]]
    u_data = b"".join(b"%s\t%s\t%s\t0\n" % tuple(row) for row in rows)
    with zipfile.ZipFile(folder / "ml-100k.zip", "w") as archive:
        archive.writestr("ml-100k/u.data", u_data)
    for archive in ("ml-latest-small.zip", "ml-100k.zip"):  # GroupLens' sidecar format
        md5 = hashlib.md5((folder / archive).read_bytes()).hexdigest()
        (folder / f"{archive}.md5").write_text(f"MD5 ({archive}) = {md5}\n")
    served = _Mirror(folder)
    yield served, folder
    served.close()
