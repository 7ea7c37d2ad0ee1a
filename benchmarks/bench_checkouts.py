"""The hot paths of two source trees of the package, measured in one run, alternated.

For a change that should move code, not slow it (a re-layering, say): each tree's
compiled parts must be built in place (``python setup.py build_ext --inplace`` there).
Each measurement runs in a fresh interpreter that imports the package from that tree
(``PYTHONPATH``); the trees alternate (each first in turn), ``REPEATS`` runs each, and
the table gives the medians, the ratio of the second tree's to the first's, and the
range of the ratios of the runs side by side (this machine's speed drifts within
minutes).

- a9a (32,561 rows): ``ServerlessSGDClassifier()`` fit, the in-process path (the
  median of 5 fits after a first one);
- 300,000 hashed click-log rows (``_problems.hashed_split``), 2 epochs, ``tol=None``: one
  sequential worker's compiled training rate, the processes executor's fit rate with 2
  workers (staging left out), and 2 process workers on a Redis store (the replicas'
  log entries and their codecs);
- MovieLens latest-small: ``ServerlessMatrixFactorization()`` fit, in process.

Run from the repository root: ``python benchmarks/bench_checkouts.py OLD_TREE NEW_TREE``
(needs redis-server).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _servers import local_redis
from _table import machine, print_table

REPEATS = 5
HERE = Path(__file__).resolve().parent
DATASETS = HERE.parents[1] / "shared" / "datasets"

# 2 warm process workers on the store given
FANNED_OUT = """
from _problems import hashed_split
from sklearn_cirrus import ServerlessSGDClassifier
X, y, X_test, y_test = hashed_split(300_000)
ServerlessSGDClassifier(executor="processes", n_workers=2, max_iter=1).fit(X_test, y_test)
model = ServerlessSGDClassifier(
    executor="processes", n_workers=2, max_iter=2, tol=None, random_state=0, store={store!r}
).fit(X, y)
report = model.fit_report_
print(report["samples"] / (report["wall_seconds"] - report["seconds_staging"]))
"""

# each prints one number; {redis} is the store's URL
MEASUREMENTS = {
    "a9a fit, in process (s)": f"""
import time
import numpy as np
from bench_quality import load
from sklearn_cirrus import ServerlessSGDClassifier
X, y = load({str(DATASETS / "a9a.libsvm.gz")!r}, 123)
seconds = []
for _ in range(6):  # the first, with its one-off costs, left out
    started = time.perf_counter()
    ServerlessSGDClassifier(random_state=0).fit(X, y)
    seconds.append(time.perf_counter() - started)
print(np.median(seconds[1:]))
""",
    "one sequential worker, training samples/s": """
from _problems import hashed_split
from sklearn_cirrus import ServerlessSGDClassifier
X, y, _, _ = hashed_split(300_000)
model = ServerlessSGDClassifier(
    executor="sequential", n_workers=1, max_iter=2, tol=None, random_state=0
).fit(X, y)
print(model.fit_report_["samples"] / model.fit_report_["seconds_compute"])
""",
    "processes x2, fit samples/s": FANNED_OUT.replace("{store!r}", "None"),
    "processes x2 on Redis, fit samples/s": FANNED_OUT.replace("{store!r}", "{redis!r}"),
    "MovieLens factorization fit, in process (s)": f"""
import time
import numpy as np
from sklearn_cirrus import ServerlessMatrixFactorization, load_movielens
X, y = load_movielens({str(DATASETS / "ml-latest-small_ratings.csv.gz")!r})
X = np.asarray(X)
started = time.perf_counter()
ServerlessMatrixFactorization(random_state=0).fit(X, y)
print(time.perf_counter() - started)
""",
}


def measure(tree: Path, code: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}
    # (from the benchmarks' folder: neither tree is the current folder)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=HERE, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr}")
    return float(done.stdout.split()[-1])


def main() -> None:
    old, new = (Path(arg).resolve() for arg in sys.argv[1:3])
    print(f"machine: {machine()}\nold: {old}\nnew: {new}\n")
    rows = []
    with local_redis() as redis:
        for name, code in MEASUREMENTS.items():
            code = code.replace("{redis!r}", repr(redis))
            runs: dict[Path, list[float]] = {old: [], new: []}
            for repeat in range(REPEATS):
                # in turn first (ABBA...): the second of a pair may find the first's leftovers
                for tree in (old, new) if repeat % 2 == 0 else (new, old):
                    runs[tree].append(measure(tree, code))
            medians = [float(np.median(runs[tree])) for tree in (old, new)]
            ratios = [n / o for o, n in zip(runs[old], runs[new], strict=True)]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            shown = [f"{m:,.0f}" if m > 100 else f"{m:.3f}" for m in medians]
            rows.append([name, *shown, medians[1] / medians[0], spread])
    headers = [f"hot path (median of {REPEATS}, alternated)", "old", "new", "new / old"]
    print_table([*headers, "run by run"], rows)


if __name__ == "__main__":
    main()
