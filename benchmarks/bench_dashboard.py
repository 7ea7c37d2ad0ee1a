"""The live dashboard: how soon an epoch reaches the screen, and what it costs a search.

a9a, ``ServerlessGridSearchCV`` over 12 candidates x 3 folds (bench_search.py's grid,
processes executor, 2 in flight, ``MAX_ITER`` epochs a fit: a search long enough to be
watched), with ``early_stopping="median"`` and without, run alternately: without the
dashboard, with it but no page open, and with it and the page open in a real browser on
this machine (Debian's headless chromium, driven by selenium, on the same 2 cores as the
workers and the driver), at normal priority and at nice 19 (the browser taking only the
CPU the search leaves idle, as a browser on the user's own machine takes none of the
serverless workers'). Without early stopping a dashboard scores every fit at every
epoch, which the search did not do; with it, the search scores anyway. A script in the
page stamps, at the next animation frame after each update of the curves, the time and
the number of epochs drawn per candidate; an epoch's latency is from the end of the first
fold's epoch (the board's clock) to the first frame that draws it. A fifth configuration
runs the search beside two busy loops at nice 19 and no dashboard: what CPU taken at the
lowest priority costs the search on this machine. The table adds the CPU seconds this
process (the driver, and the dashboard's server thread) and the browser used per search.

Targets (issue: the live dashboard): latency under 1 s; overhead on the search's wall
time under 3%.

Run from the repository root: ``python benchmarks/bench_dashboard.py [repeats]``
(needs ``apt-get install chromium chromium-driver`` and ``pip install selenium``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _table import machine, print_table
from bench_quality import load
from bench_search import A9A_GRID, DATASETS
from sklearn.model_selection import KFold

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import browser  # noqa: E402  (the tests' own driver of chromium)

# stamps [ms since the epoch, {candidate: epochs drawn}] at the frame after each update
COLLECT = """
window.stamps = [];
const watch = setInterval(() => {
  if (!window.Bokeh || !Bokeh.documents.length) return;
  const source = Bokeh.documents[0].get_model_by_name('curves');
  if (!source) return;
  clearInterval(watch);
  const stamp = () => requestAnimationFrame(() => {
    const drawn = {};
    source.data.candidate.forEach((c, k) => { drawn[c] = source.data.loss[k].length; });
    window.stamps.push([Date.now(), drawn]);
  });
  stamp();
  source.properties.data.change.connect(stamp);
}, 10);
"""


MAX_ITER = 40
RULES = ("median", None)


def search(dashboard: bool, rule) -> ServerlessGridSearchCV:
    return ServerlessGridSearchCV(
        ServerlessSGDClassifier(random_state=0, tol=None, max_iter=MAX_ITER),
        A9A_GRID,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="accuracy",
        executor="processes",
        max_workers=2,
        early_stopping=rule,
        dashboard=dashboard,
    )


def run(X, y, dashboard: bool, rule, driver=None, niceness=0):
    """Wall seconds of one search, the CPU seconds of this process (the search's driver,
    and the dashboard's server) and of the browser while it ran; with ``driver``, the
    page's latencies too."""
    runner = search(dashboard, rule)
    browser_cpu = 0.0 if driver is None else browser.cpu_seconds(driver)
    driver_cpu = _own_cpu()
    started = time.perf_counter()
    thread = threading.Thread(target=runner.fit, args=(X, y))
    thread.start()
    latencies, missed = [], 0
    if driver is None:
        thread.join()
        seconds = time.perf_counter() - started
        return seconds, _own_cpu() - driver_cpu, 0.0, latencies, missed
    while not hasattr(runner, "dashboard_url_"):
        time.sleep(0.005)
    board = runner._board
    driver.get(runner.dashboard_url_)
    if niceness:
        browser.lower_priority(driver, niceness)
    driver.execute_script(COLLECT)
    watching_from = time.time()
    thread.join()
    seconds = time.perf_counter() - started
    ended = time.time()
    browser_cpu = browser.cpu_seconds(driver) - browser_cpu
    # the page keeps its stamps once the search has closed its connection
    stamps = driver.execute_script("return window.stamps || [];")
    driver.get("about:blank")  # nothing left running in the page
    # the board's clock (perf_counter from its start) as wall-clock time
    to_wall = time.time() - time.perf_counter() + board.started
    for candidate in range(len(board.candidates)):
        ends = [board.record(candidate, k).seconds for k in range(board.n_splits)]
        drawn = [(ms / 1e3, counts.get(str(candidate), 0)) for ms, counts in stamps]
        for epoch in range(max(len(e) for e in ends)):
            end = to_wall + min(e[epoch] for e in ends if len(e) > epoch)
            if end < watching_from:
                continue
            shown = [t for t, n in drawn if n > epoch]
            if shown:
                latencies.append(min(shown) - end)
            elif end < ended - 1.0:  # the last refresh may come after the page closed
                missed += 1
    return seconds, _own_cpu() - driver_cpu, browser_cpu, latencies, missed


@contextlib.contextmanager
def busy_loops(n: int, niceness: int = 19):
    """``n`` processes spinning at ``niceness`` meanwhile: what CPU taken at the lowest
    priority costs a search on this machine, whoever takes it."""
    spinning = [
        subprocess.Popen(["nice", "-n", str(niceness), sys.executable, "-c", "while True: pass"])
        for _ in range(n)
    ]
    try:
        yield
    finally:
        for process in spinning:
            process.kill()
            process.wait()


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    X, y = load(DATASETS / "a9a.libsvm.gz", 123)
    print(f"machine: {machine()}")
    run(X, y, False, "median")  # the pool's processes started once, as in a session
    browsers = {"page in chromium": browser.headless_chromium()}
    browsers["page in chromium at nice 19"] = browser.headless_chromium()
    latencies = {name: [] for name in browsers}
    missed = dict.fromkeys(browsers, 0)
    try:
        for rule in RULES:
            configs = ["no dashboard", "no dashboard, 2 busy loops at nice 19"]
            configs += ["dashboard, no page open"]
            configs += [f"dashboard + {name}" for name in browsers]
            walls = {name: [] for name in configs}
            driver_cpu = {name: [] for name in configs}
            browser_cpu = {name: [] for name in configs}
            for _ in range(repeats):
                for config in configs:
                    name = config.removeprefix("dashboard + ")
                    driver = browsers.get(name)
                    niceness = 19 if "nice" in name else 0
                    with busy_loops(2 if "busy" in config else 0):
                        seconds, own, page, page_latencies, page_missed = run(
                            X, y, config.startswith("dashboard"), rule, driver, niceness
                        )
                    walls[config].append(seconds)
                    driver_cpu[config].append(own)
                    browser_cpu[config].append(page)
                    if driver is not None:
                        latencies[name] += page_latencies
                        missed[name] += page_missed
            print(
                f"\n### early_stopping={rule!r}: a9a, 12 candidates x 3 folds, "
                f"max_iter={MAX_ITER}, {repeats} runs of each, alternated\n"
            )
            base = np.median(walls["no dashboard"])
            rows = [
                [
                    name,
                    " ".join(f"{s:.2f}" for s in runs),
                    f"{np.median(runs):.2f}",
                    f"{np.median(runs) / base - 1:+.1%}",
                    f"{np.mean(driver_cpu[name]):.2f}",
                    f"{np.mean(browser_cpu[name]):.2f}",
                ]
                for name, runs in walls.items()
            ]
            print_table(
                [
                    "search",
                    "wall (s), each run",
                    "median (s)",
                    "vs no dashboard",
                    "driver CPU (s)",
                    "browser CPU (s)",
                ],
                rows,
            )
    finally:
        for driver in browsers.values():
            driver.quit()
    print()
    for name, values in latencies.items():
        lat = np.array(values)
        print(
            f"{name}: epoch end -> drawn: {len(lat)} epochs, median {np.median(lat):.3f} s, "
            f"95th percentile {np.percentile(lat, 95):.3f} s, max {lat.max():.3f} s "
            f"(target < 1 s); {missed[name]} epochs ended more than 1 s before the page "
            f"closed and were never drawn"
        )


if __name__ == "__main__":
    main()
