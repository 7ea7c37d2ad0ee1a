"""What checking shards costs: training throughput with the CRC-32 checks and without.

The 1M-row hashed click problem (``_problems.hashed_split``, 2**20 features) written once as
a ShardedDataset in shared memory; ``ServerlessSGDClassifier(executor="sequential",
n_workers=1, max_iter=3, tol=None)`` fits on it, reading every shard every epoch in this
process, alternately with the reader's checks (each member's CRC-32, the shard's digest)
and with a reader that skips the CRC-32 pass (the same code otherwise), 5 runs each;
medians of the workers' samples per second. Target (issue "Integrity"): within 3%.

Run from the repository root: ``python benchmarks/bench_integrity.py [n_rows]`` (default 1M).
"""

from __future__ import annotations

import sys
import zlib

import numpy as np
from _problems import hashed_split
from _table import machine, print_table

from sklearn_cirrus import ServerlessSGDClassifier, ShardedDataset
from sklearn_cirrus.data import integrity
from sklearn_cirrus.namespaces import namespace_name, shared_memory_root

REPEATS = 5


class _NoCRC:
    """zlib as the reader sees it, but for a CRC-32 that is never computed: it answers
    the stored one (the reader compares the two)."""

    def __init__(self):
        self.answer = 0

    def crc32(self, data):
        return self.answer

    def __getattr__(self, name):
        return getattr(zlib, name)


def unchecked_read_member(f, member, url):
    saved = integrity.zlib
    integrity.zlib = _NoCRC()
    integrity.zlib.answer = member.CRC
    try:
        return CHECKED(f, member, url)
    finally:
        integrity.zlib = saved


CHECKED = integrity._read_member


def main(n_rows: int) -> None:
    print(f"machine: {machine()}")
    X, y, _, _ = hashed_split(n_rows)
    dataset = ShardedDataset.from_arrays(X, y, str(shared_memory_root() / namespace_name()))
    try:
        model = ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=3, tol=None)
        rates = {True: [], False: []}
        for _ in range(REPEATS):
            for checked in (True, False):
                integrity._read_member = CHECKED if checked else unchecked_read_member
                report = model.fit(dataset).fit_report_
                rates[checked].append(report["samples"] / report["worker_seconds"])
        integrity._read_member = CHECKED
    finally:
        dataset.remove()
    with_checks, without = np.median(rates[True]), np.median(rates[False])
    print_table(
        ["reader", "samples/s (median)", "runs"],
        [
            ["CRC-32 checks and digest", f"{with_checks:,.0f}", REPEATS],
            ["no CRC-32 pass", f"{without:,.0f}", REPEATS],
        ],
    )
    print(f"\nwith checks: {with_checks / without - 1:+.1%} (target within 3%)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
