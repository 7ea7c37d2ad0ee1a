"""Data bigger than the driver: click logs fitted from files, next to the in-memory path.

For each size of a Criteo-format TSV (``criteo_like.py``; by default 1.2M, 4M and 12M rows,
about 0.3, 1 and 3 GB), in a fresh driver process each so that its peak memory is its own:

- **files**: ``ShardedDataset.from_csv`` (workers convert the file in byte ranges), then
  ``make_pipeline(ServerlessFeatureHasher(2**20), ServerlessSGDClassifier())`` fitted on the
  dataset with 2 process workers, the hashing done in the workers' readers; test log-loss
  over the held-out rows, computed by the workers;
- **in memory** (the sizes in ``IN_MEMORY_SIZES``): the same rows read and hashed in the
  driver (exactly scikit-learn's ``FeatureHasher``), ``ServerlessSGDClassifier().fit(X, y)``
  with 2 process workers, the same test rows.

Reported: the driver's peak resident memory (VmHWM of the driver alone; workers are other
processes), conversion seconds, training rows a second (rows trained / fit seconds,
for the in-memory path without the seconds it stages shards), and test log-loss.
Targets: driver peak under 400 MB and flat across sizes; training throughput within 20% of
the in-memory path; test log-loss within 0.002 of it.

Run from the repository root: ``python benchmarks/bench_out_of_core.py [ROWS ...]``
(files are written to ``$TMPDIR``, about 250 bytes a row, and removed afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _table import machine, print_table
from criteo_like import NAMES, read_hashed, write_criteo_tsv

TEST_ROWS = 200_000
EPOCHS = 3
N_FEATURES = 2**20
IN_MEMORY_SIZES = (400_000, 1_200_000, 4_000_000)
SIZES = (1_200_000, 4_000_000, 12_000_000)


def _classifier():
    from sklearn_cirrus import ServerlessSGDClassifier

    return ServerlessSGDClassifier(
        executor="processes", n_workers=2, max_iter=EPOCHS, tol=None, random_state=0
    )


def _log_loss(y, probability) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, probability))


def fit_files(path: str, n_rows: int, folder: str) -> dict:
    from sklearn.pipeline import make_pipeline

    from sklearn_cirrus import ShardedDataset
    from sklearn_cirrus.preprocessing import ServerlessFeatureHasher

    started = time.perf_counter()
    dataset = ShardedDataset.from_csv(
        path,
        folder,
        sep="\t",
        header=False,
        names=NAMES,
        target="label",
        categorical=NAMES[14:],
        executor="processes",
    )
    converted = time.perf_counter() - started
    train, test = dataset[: n_rows - TEST_ROWS], dataset[n_rows - TEST_ROWS :]
    model = make_pipeline(ServerlessFeatureHasher(N_FEATURES), _classifier())
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    report = model[-1].fit_report_
    return {
        "convert_s": converted,
        "rows_per_s": report["samples"] / fit_seconds,
        "test_log_loss": _log_loss(test.targets(), model.predict_proba(test)),
    }


def fit_in_memory(path: str, n_rows: int) -> dict:
    X, y = read_hashed(path, N_FEATURES)
    n_train = n_rows - TEST_ROWS
    model = _classifier()
    started = time.perf_counter()
    model.fit(X[:n_train], y[:n_train])
    fit_seconds = time.perf_counter() - started - model.fit_report_["seconds_staging"]
    return {
        "convert_s": float("nan"),
        "rows_per_s": model.fit_report_["samples"] / fit_seconds,
        "test_log_loss": _log_loss(y[n_train:], model.predict_proba(X[n_train:])),
    }


def _peak_resident_mb() -> float:
    """This process's peak resident memory since it started its program (VmHWM; unlike
    ru_maxrss, it does not inherit the parent's peak across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _measure(mode: str, path: str, n_rows: int, folder: str) -> dict:
    """One fit in a fresh interpreter: its results and the driver's peak memory."""
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, path, str(n_rows), folder],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(sizes) -> None:
    print(f"machine: {machine()}\n")
    rows, results = [], {}
    root = tempfile.mkdtemp(prefix="bench-out-of-core-")
    try:
        for n_rows in sizes:
            path = os.path.join(root, f"clicks-{n_rows}.tsv")
            write_criteo_tsv(path, n_rows)
            gigabytes = os.path.getsize(path) / 1e9
            modes = ["files"] + (["in memory"] if n_rows in IN_MEMORY_SIZES else [])
            for mode in modes:
                folder = os.path.join(root, f"dataset-{n_rows}")
                result = _measure(mode, path, n_rows, folder)
                shutil.rmtree(folder, ignore_errors=True)
                results[(n_rows, mode)] = result
                rows.append(
                    [
                        f"{n_rows:,}",
                        f"{gigabytes:.2f}",
                        mode,
                        f"{result['driver_peak_mb']:.0f}",
                        f"{result['convert_s']:.1f}",
                        f"{result['rows_per_s']:,.0f}",
                        result["test_log_loss"],
                    ]
                )
            os.remove(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(
        [
            "rows",
            "GB",
            "path",
            "driver peak MB",
            "convert s",
            "training rows/s",
            "test log-loss",
        ],
        rows,
    )
    print()
    for n_rows in sizes:
        if (n_rows, "in memory") in results:
            files, memory = results[(n_rows, "files")], results[(n_rows, "in memory")]
            print(
                f"{n_rows:,} rows: throughput files / in memory = "
                f"{files['rows_per_s'] / memory['rows_per_s']:.2f} (target >= 0.8); "
                f"test log-loss difference = "
                f"{files['test_log_loss'] - memory['test_log_loss']:+.4f} (target within 0.002)"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        mode, path, n_rows, folder = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        result = (fit_files if mode == "files" else fit_in_memory)(
            *((path, n_rows, folder) if mode == "files" else (path, n_rows))
        )
        result["driver_peak_mb"] = _peak_resident_mb()
        print(json.dumps(result))
    else:
        main([int(n) for n in sys.argv[1:]] or SIZES)
