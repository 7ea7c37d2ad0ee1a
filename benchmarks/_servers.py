"""A redis-server on a free loopback port, for the benchmarks that need one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager


class LocalRedis:
    """redis-server (no persistence) on a free port of 127.0.0.1, with ``options``;
    ``restart`` brings it back empty, as a server without persistence comes back."""

    def __init__(self, *options: str):
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found: apt-get install redis-server")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.command += ["--save", "", "--appendonly", "no", *options]
        self.server = None

    def start(self) -> None:
        self.server = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def local_redis():
    """Start a :class:`LocalRedis` and yield its URL."""
    server = LocalRedis()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _serve_with_latency(
    listen_port: int, target_port: int, round_trip_s: float, bytes_per_s: float | None = None
) -> None:
    """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port, each byte held
    ``round_trip_s / 2`` on its way in and again on its way out (bytes keep their order
    and stream on meanwhile: a delay), and, with ``bytes_per_s``, each direction of each
    connection let through at that rate at most (a link's bandwidth: a chunk leaves once
    the ones before it and its own size at that rate have passed)."""
    import asyncio

    one_way = round_trip_s / 2

    async def pipe(reader, writer):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        link_free = 0.0  # when this direction's link has sent what it was given

        async def delayed_writes():
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        writing = asyncio.create_task(delayed_writes())
        while data := await reader.read(1 << 16):
            sent = loop.time()
            if bytes_per_s is not None:
                link_free = max(link_free, sent) + len(data) / bytes_per_s
                sent = link_free
            queue.put_nowait((sent + one_way, data))
        queue.put_nowait(None)
        await writing

    async def connect(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(client_reader, server_writer),
            pipe(server_reader, client_writer),
            return_exceptions=True,
        )

    async def main():
        server = await asyncio.start_server(connect, "127.0.0.1", listen_port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def latency_proxy(url: str, round_trip_ms: float, megabytes_per_s: float | None = None):
    """The Redis ``url`` seen through a forwarder that adds ``round_trip_ms`` to every
    round trip and, with ``megabytes_per_s``, caps each connection's bandwidth in each
    direction (this kernel has no netem qdisc), run in its own process; yields its URL."""
    import sys

    target = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    here = str(__import__("pathlib").Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); from _servers import _serve_with_latency; "
        f"_serve_with_latency({port}, {target}, {round_trip_ms / 1000!r}, "
        f"{None if megabytes_per_s is None else megabytes_per_s * 1e6!r})"
    )
    proxy = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url.replace(f":{target}/", f":{port}/")
    finally:
        proxy.terminate()
        proxy.wait()
