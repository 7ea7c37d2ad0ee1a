"""What checking shards costs: training throughput with the CRC-32 checks and without.

The 1M-row hashed click problem (``_problems.hashed_split``, 2**20 features) written once as
a ShardedDataset in shared memory; ``ServerlessSGDClassifier(max_iter=3, tol=None)`` fits
on it, sequential x1 and threads x2 (workers in this process, so that the reader can be
swapped), alternately with the reader's checks (each array's CRC-32 the first time a
process reads a shard, the shard's digest and counts at every read) and with a reader that
skips the CRC-32 pass (the same code otherwise), 5 runs each; medians of the fits' samples
per second of training. Target (issue "Integrity"): within 3%.

Run from the repository root: ``python benchmarks/bench_integrity.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import struct
import sys

import numpy as np
from _problems import hashed_split
from _table import machine, print_table

from sklearn_cirrus import ServerlessSGDClassifier, ShardedDataset
from sklearn_cirrus.data import integrity
from sklearn_cirrus.namespaces import namespace_name, shared_memory_root

REPEATS = 5
# one worker (its reads overlap its training on the second core) and two threads (no core
# to spare: what the checks cost shows)
CONFIGS = [("sequential", 1), ("threads", 2)]


def unchecked_read_member(f, member, url, check_bytes=True):
    """``integrity._read_member`` without its CRC-32 pass: the member's bytes read in
    place, the array over them."""
    f.seek(member.header_offset)
    header = f.read(30)
    name_bytes, extra_bytes = struct.unpack("<HH", header[26:30])
    f.seek(member.header_offset + 30 + name_bytes + extra_bytes)
    raw = bytearray(member.file_size)
    f.readinto(raw)
    return integrity._npy_array(raw, url)


CHECKED = integrity._read_member


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, _, _ = hashed_split(n_rows)
    dataset = ShardedDataset.from_arrays(X, y, str(shared_memory_root() / namespace_name()))
    rates = {(config, checked): [] for config in CONFIGS for checked in (True, False)}
    try:
        for _ in range(REPEATS):
            for (executor, workers), checked in rates:
                model = ServerlessSGDClassifier(
                    executor=executor, n_workers=workers, max_iter=3, tol=None
                )
                integrity._read_member = CHECKED if checked else unchecked_read_member
                integrity.CHECKED_FILES.clear()  # every fit as a fresh worker process's
                report = model.fit(dataset).fit_report_
                # the fit's samples over its training time (staging left out)
                seconds = report["wall_seconds"] - report["seconds_staging"]
                rates[(executor, workers), checked].append(report["samples"] / seconds)
        integrity._read_member = CHECKED
    finally:
        dataset.remove()
    rows = []
    for executor, workers in CONFIGS:
        with_checks = np.median(rates[(executor, workers), True])
        without = np.median(rates[(executor, workers), False])
        rows.append(
            [
                f"{executor} x{workers}",
                f"{with_checks:,.0f}",
                f"{without:,.0f}",
                f"{with_checks / without - 1:+.1%}",
            ]
        )
    print_table(["workers", "samples/s, checked", "samples/s, no CRC-32 pass", "with checks"], rows)
    print(f"\n(medians of {REPEATS}, alternated; target: within 3%)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
