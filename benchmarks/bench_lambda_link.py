"""Redis behind a Lambda-shaped link: 60 MB/s a connection each way, 0.5 ms a round trip.

Cirrus's workers had about 60 MB/s each to their store and no link to each other. The
hashed click problem (``_problems.hashed_split``, 2**20 features, 1M rows by default),
``ServerlessSGDClassifier(executor="processes", max_iter=1, tol=None)`` at its defaults
(adagrad, L2; ``exchange_every`` the default for the worker count), 2 and 4 workers:
shared memory, then Redis through ``_servers.latency_proxy`` (its own process) with the
link's round trip and bandwidth. 3 fits of each, alternated; medians of training
samples/s (the driver's staging left out), test log-loss, and the bytes Redis received and
sent per training sample (``INFO stats``). The link's bound: a worker's exchange is a
request then its reply, each through its connection's 60 MB/s (it overlaps the next run's
training, not itself), so at most n_workers x 60 MB/s over the bytes a sample both ways.
Target (issue "hot path, second round"): Redis >= 0.33x shared memory's samples/s at a
test log-loss within 0.001.

Then where the bytes go: one fit of 2 threads on Redis (workers in this process, so that
their entries can be counted as they are encoded), the bytes of the workers' entries (and
an entry row's size) against all that Redis received and sent; the rest is whole-model
transfers (the model created, folds, each invocation's load, the driver's last read).

Run from the repository root: ``python benchmarks/bench_lambda_link.py [n_rows]``.
"""

from __future__ import annotations

import sys

import numpy as np
import redis
from _problems import hashed_split
from _servers import latency_proxy, local_redis
from _table import machine, print_table
from sklearn.metrics import log_loss

from sklearn_cirrus import ServerlessSGDClassifier

ROUND_TRIP_MS = 0.5
MEGABYTES_PER_S = 60.0
WORKERS = (2, 4)
REPEATS = 3


def net_bytes(url: str) -> tuple[int, int]:
    """What the Redis server at ``url`` has received and sent so far."""
    stats = redis.Redis.from_url(url).info("stats")
    return stats["total_net_input_bytes"], stats["total_net_output_bytes"]


def bytes_breakdown(X, y) -> None:
    from sklearn_cirrus.store import delta_log

    counted = {"entry bytes": 0, "entry rows": 0}
    encode = delta_log.DeltaEntry.to_bytes

    def counting(entry):
        payload = encode(entry)
        counted["entry bytes"] += len(payload)
        counted["entry rows"] += entry.rows.size
        return payload

    delta_log.DeltaEntry.to_bytes = counting
    try:
        with local_redis() as url:
            before = net_bytes(url)
            ServerlessSGDClassifier(
                executor="threads", n_workers=2, max_iter=1, tol=None, store=url
            ).fit(X, y)
            received, sent = (a - b for a, b in zip(net_bytes(url), before, strict=True))
    finally:
        delta_log.DeltaEntry.to_bytes = encode
    n = X.shape[0]
    entries = counted["entry bytes"] / n
    print(
        f"\nwhere the bytes go (threads x2, Redis on loopback): {received / n:.0f} B a sample "
        f"in, {sent / n:.0f} out; the workers' entries {entries:.0f} B a sample "
        f"({counted['entry bytes'] / max(counted['entry rows'], 1):.1f} B an entry row, "
        f"{counted['entry rows'] / n:.1f} rows a sample), read back by the other worker; "
        "the rest whole-model transfers"
    )


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, X_test, y_test = hashed_split(n_rows)

    def fit(store, workers):
        model = ServerlessSGDClassifier(
            executor="processes", n_workers=workers, max_iter=1, tol=None, store=store
        ).fit(X, y)
        report = model.fit_report_
        rate = report["samples"] / (report["wall_seconds"] - report["seconds_staging"])
        return rate, log_loss(y_test, model.predict_proba(X_test))

    runs = {(w, store): [] for w in WORKERS for store in ("shm", "redis")}
    moved = {w: [] for w in WORKERS}
    fit("shm", max(WORKERS))  # the warm worker processes started once
    with local_redis() as url, latency_proxy(url, ROUND_TRIP_MS, MEGABYTES_PER_S) as far:
        for _ in range(REPEATS):
            for workers, store in runs:
                before = net_bytes(url)
                runs[workers, store].append(fit(far if store == "redis" else "shm", workers))
                if store == "redis":
                    after = net_bytes(url)
                    moved[workers].append(
                        [(a - b) / n_rows for a, b in zip(after, before, strict=True)]
                    )
    rows, summary = [], []
    for workers in WORKERS:
        local = np.median(runs[workers, "shm"], axis=0)
        remote = np.median(runs[workers, "redis"], axis=0)
        received, sent = np.median(moved[workers], axis=0)
        bound = workers * MEGABYTES_PER_S * 1e6 / (received + sent)
        rows.append([f"shared memory x{workers}", f"{local[0]:,.0f}", "1.00", f"{local[1]:.5f}"])
        rows.append(
            [
                f"Redis x{workers}, {MEGABYTES_PER_S:.0f} MB/s, {ROUND_TRIP_MS} ms",
                f"{remote[0]:,.0f}",
                f"{remote[0] / local[0]:.2f}",
                f"{remote[1]:.5f}",
                f"{received:.0f} in, {sent:.0f} out",
                f"{bound:,.0f} ({bound / local[0]:.2f}x)",
            ]
        )
        summary.append(
            f"x{workers}: Redis {remote[0] / local[0]:.2f}x shared memory (target >= 0.33x), "
            f"test log-loss {remote[1] - local[1]:+.5f} (target within 0.001); the link "
            f"alone allows {bound / local[0]:.2f}x"
        )
    print(f"\ndata: {n_rows} rows; one epoch, defaults; {REPEATS} fits each, medians\n")
    print_table(
        [
            "store",
            "samples/s",
            "x shared memory",
            "test log-loss",
            "bytes a sample",
            "link bound, samples/s",
        ],
        rows,
    )
    print()
    print("\n".join(summary))
    bytes_breakdown(X, y)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
