"""What checking shards costs: training throughput with the CRC-32 checks and without.

The 1M-row hashed click problem (``_problems.hashed_split``, 2**20 features) written once as
a ShardedDataset in shared memory; ``ServerlessSGDClassifier(max_iter=3, tol=None)`` fits
on it, sequential x1 and threads x2 (workers in this process, so that the reader can be
swapped), alternately with the reader's checks (each array's CRC-32 the first time a
process reads a shard, with its non-zeros and label counts; the shard's digest, rows and
width at every read) and with a reader that skips the CRC-32 pass and the counts of
non-zeros and labels (the same code otherwise), 7 runs each; medians of the fits' samples
per second of training. Target (issue "Integrity"): within 3%.

Run from the repository root: ``python benchmarks/bench_integrity.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import struct
import sys
import time

import numpy as np
from _problems import hashed_split
from _table import machine, print_table

from sklearn_cirrus import ServerlessSGDClassifier, ShardedDataset
from sklearn_cirrus.data import integrity, reader
from sklearn_cirrus.namespaces import namespace_name, shared_memory_root

REPEATS = 7
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


def skip_contents(*args) -> None:
    """``reader._check_contents`` left out: no count of non-zeros and labels."""


CHECKED = integrity._read_member
CHECKED_CONTENTS = reader._check_contents


def read_seconds(dataset, checked: bool) -> float:
    """Seconds to read every shard once, as a fresh process does: with the checks, or
    without the CRC-32 pass and the counts."""
    integrity._read_member = CHECKED if checked else unchecked_read_member
    reader._check_contents = CHECKED_CONTENTS if checked else skip_contents
    integrity.CHECKED_FILES.clear()
    handle = dataset.handle()
    started = time.perf_counter()
    for shard_id in range(handle.n_shards):
        reader.read_shard(handle, shard_id)
    seconds = time.perf_counter() - started
    integrity._read_member, reader._check_contents = CHECKED, CHECKED_CONTENTS
    return seconds


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, _, _ = hashed_split(n_rows)
    dataset = ShardedDataset.from_arrays(X, y, str(shared_memory_root() / namespace_name()))
    rates = {(config, checked): [] for config in CONFIGS for checked in (True, False)}
    reads = {True: [], False: []}
    try:
        for _ in range(REPEATS):
            for checked in reads:
                reads[checked].append(read_seconds(dataset, checked))
            for (executor, workers), checked in rates:
                model = ServerlessSGDClassifier(
                    executor=executor, n_workers=workers, max_iter=3, tol=None
                )
                integrity._read_member = CHECKED if checked else unchecked_read_member
                reader._check_contents = CHECKED_CONTENTS if checked else skip_contents
                integrity.CHECKED_FILES.clear()  # every fit as a fresh worker process's
                report = model.fit(dataset).fit_report_
                # the fit's samples over its training time (staging left out)
                seconds = report["wall_seconds"] - report["seconds_staging"]
                rates[(executor, workers), checked].append(report["samples"] / seconds)
        integrity._read_member = CHECKED
        reader._check_contents = CHECKED_CONTENTS
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
    print_table(["workers", "samples/s, checked", "samples/s, unchecked", "with checks"], rows)
    print(f"\n(medians of {REPEATS}, alternated; target: within 3%)")
    # the checks alone, out of the fits' noise: what a process pays once for the dataset
    cost = np.median(reads[True]) - np.median(reads[False])
    epoch = n_rows / np.median(rates[("threads", 2), True])
    print(
        f"\nreading every shard once, one thread: {np.median(reads[True]):.3f} s with the checks, "
        f"{np.median(reads[False]):.3f} s without: the checks cost {cost:.3f} s once a process, "
        f"{cost / epoch:.1%} of one epoch of threads x2 ({epoch:.2f} s); over a fit of 3 "
        f"epochs {cost / (3 * epoch):.1%}, of 11 (the defaults here) {cost / (11 * epoch):.1%}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
