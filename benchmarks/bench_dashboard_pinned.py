"""The live dashboard with the worker on a core of its own: the deployment, emulated.

With serverless workers, the search's driver and the user's browser share the user's
machine and the workers run elsewhere. Here: ``bench_dashboard.py``'s search with one
worker in flight, its process pinned to the last CPU, and the driver, the dashboard and
the browser pinned to CPU 0 (every thread and process this script starts inherits it).
Configurations alternated: no dashboard, dashboard with no page, page open in chromium.

Run from the repository root: ``python benchmarks/bench_dashboard_pinned.py [repeats [rule]]``
(rule: ``median`` or ``none``; needs chromium, chromium-driver and selenium).
"""

from __future__ import annotations

import os
import sys

os.sched_setaffinity(0, {0})  # before any thread or process starts: they all inherit it

import bench_dashboard  # noqa: E402
import numpy as np  # noqa: E402
from _table import machine, print_table  # noqa: E402
from bench_dashboard import browser, load, run  # noqa: E402
from bench_search import DATASETS  # noqa: E402


def one_worker_search(dashboard: bool, rule):
    search = ONE_CORE_SEARCH(dashboard, rule)
    search.max_workers = 1
    return search


ONE_CORE_SEARCH, bench_dashboard.search = bench_dashboard.search, one_worker_search


def worker_processes() -> list[int]:
    """This process's Python children: the executor's pool."""
    pids = []
    for pid in browser.children().get(os.getpid(), []):
        try:
            with open(f"/proc/{pid}/cmdline") as command:
                if "python" in command.read():
                    pids.append(pid)
        except OSError:
            continue
    return pids


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rule = None if len(sys.argv) > 2 and sys.argv[2] == "none" else "median"
    X, y = load(DATASETS / "a9a.libsvm.gz", 123)
    print(f"machine: {machine()}")
    run(X, y, False, rule)  # the pool's processes started once, as in a session
    workers, last = worker_processes(), os.cpu_count() - 1
    for pid in workers:
        os.sched_setaffinity(pid, {last})
    print(f"pool processes {workers} on CPU {last}; this process and the browser on CPU 0")
    driver = browser.headless_chromium()
    walls = {"no dashboard": [], "dashboard, no page open": [], "dashboard + page in chromium": []}
    latencies = []
    try:
        for _ in range(repeats):
            walls["no dashboard"].append(run(X, y, False, rule)[0])
            walls["dashboard, no page open"].append(run(X, y, True, rule)[0])
            seconds, _, _, page_latencies, _ = run(X, y, True, rule, driver)
            walls["dashboard + page in chromium"].append(seconds)
            latencies += page_latencies
            if set(worker_processes()) != set(workers):
                raise RuntimeError("the pool's processes changed: no longer pinned")
    finally:
        driver.quit()
    print(f"\n### early_stopping={rule!r}, 1 worker in flight, {repeats} runs of each\n")
    base = np.median(walls["no dashboard"])
    print_table(
        ["search", "wall (s), each run", "median (s)", "vs no dashboard"],
        [
            [name, " ".join(f"{s:.2f}" for s in runs), f"{np.median(runs):.2f}"]
            + [f"{np.median(runs) / base - 1:+.1%}"]
            for name, runs in walls.items()
        ],
    )
    lat = np.array(latencies)
    print(
        f"\nepoch end -> drawn: {len(lat)} epochs, median {np.median(lat):.3f} s, 95th "
        f"percentile {np.percentile(lat, 95):.3f} s, max {lat.max():.3f} s"
    )


if __name__ == "__main__":
    main()
