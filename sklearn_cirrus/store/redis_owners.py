"""Who owns each fit's keys on a Redis server, and the removal of keys whose owner is gone.

A fit's keys expire after the store's ``ttl`` (a day), but a driver killed outright
(``SIGKILL``, the OOM killer, a lost machine) never deletes them, and until they expire
they hold the server's memory. So a fit records its namespace in one hash of the
server, :data:`OWNERS`: its driver's host, process id and start time, and a heartbeat
(the server's clock, renewed every :data:`HEARTBEAT_SECONDS` while the fit runs). A
namespace's owner is gone when it ran on this host and that process is no longer running
(its id and start time, as :mod:`sklearn_cirrus.namespaces` tells for local folders), or,
on any host, when its heartbeat is older than :data:`STALE_SECONDS`. Such namespaces are
removed at the start of every fit on the server and by ``sklearn-cirrus cleanup --store
redis://...``. Keys of namespaces never recorded (written by hand, by earlier versions)
are left to their ``ttl``.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass

from ..namespaces import process_is_running, process_start

OWNERS = "cirrus:owners"
HEARTBEAT_SECONDS = 10.0
# twelve heartbeats missed: a driver busy for that long in one call is still beating
# (the heartbeat has its own thread), so only a driver that is gone goes silent
STALE_SECONDS = 120.0


@dataclass(frozen=True)
class Leftover:
    """A namespace whose owner is gone, with the keys it holds."""

    namespace: str
    owner: str
    keys: int


def _server_seconds(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def record_owner(client, namespace: str) -> None:
    """Record this process on this host as the owner of ``namespace``, beating now."""
    pid, start = process_start()
    owner = {"host": socket.gethostname(), "pid": pid, "start": start}
    owner["beat"] = _server_seconds(client)
    client.hset(OWNERS, namespace, json.dumps(owner))


def forget_owner(client, namespace: str) -> None:
    client.hdel(OWNERS, namespace)


class Heartbeat:
    """Renews a namespace's heartbeat from a thread of its own until :meth:`stop`.

    A beat that fails (the server out of reach for a moment) is skipped: the fit's own
    calls say what is wrong, and one missed beat is far from stale.
    """

    def __init__(self, client, namespace: str):
        self._client, self._namespace = client, namespace
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="cirrus-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                record_owner(self._client, self._namespace)
            except Exception:
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _is_gone(owner: dict, now: float) -> bool:
    if owner.get("host") == socket.gethostname():
        return not process_is_running(int(owner["pid"]), int(owner.get("start") or 0))
    return now - float(owner["beat"]) > STALE_SECONDS


def _describe(owner: dict) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')}"


def _keys_of(client, namespace: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{namespace}:*", count=1000))


def _gone(client) -> list[tuple[Leftover, list[bytes]]]:
    """The recorded namespaces of this server whose owner is gone, each with its keys."""
    now = _server_seconds(client)
    found = []
    for namespace, raw in client.hgetall(OWNERS).items():
        namespace = namespace.decode()
        try:
            owner = json.loads(raw)
            gone = _is_gone(owner, now)
        except (ValueError, KeyError, TypeError):  # not a record of ours: leave it
            continue
        if gone:
            keys = _keys_of(client, namespace)
            found.append((Leftover(namespace, _describe(owner), len(keys)), keys))
    return found


def leftovers(client) -> list[Leftover]:
    """The recorded namespaces of this server whose owner is gone (see module doc)."""
    return [leftover for leftover, _ in _gone(client)]


def remove_leftovers(client) -> list[Leftover]:
    """Remove the keys of :func:`leftovers` and their records; what was removed."""
    removed = _gone(client)
    for leftover, keys in removed:  # (keys found once: no second scan of the server)
        if keys:
            client.unlink(*keys)
        forget_owner(client, leftover.namespace)
    return [leftover for leftover, _ in removed]
