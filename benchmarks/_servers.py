"""A redis-server on a free loopback port, for the benchmarks that need one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager


@contextmanager
def local_redis():
    """Start redis-server (no persistence) on 127.0.0.1 and yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()
