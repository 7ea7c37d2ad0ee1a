"""Where one worker's kernel spends its time, part by part, against AdaGrad's bare loop.

The problem of ``bench_kernel_bound.py`` (1,000,000 hashed rows, 2**20 features,
power-law popularity): one sequential worker at the defaults, ``tol=None``, ``EPOCHS``
epochs, sampled by ``perf record -e cpu-clock`` (a software clock: no hardware counters
are needed). Each sample inside the kernel's module is charged to the line of
``kernels/_sgd.pyx`` (or ``model_table/_owed.pxd``) whose code it was in, through the
comments Cython writes into ``_sgd.c``, and each line to one part of a minibatch step:

- the row map: finding the minibatch's distinct rows and each id's place among them;
- the lazy penalty: bringing each distinct row up to date (the closed-form decay of the
  steps it missed) and copying its weights side by side (the snapshot);
- predictions: each sample's dot product over the snapshot, and its loss and derivative;
- the gradient: each sample's derivative added into its rows' gradients;
- the update: AdaGrad's step of each distinct row, written back to the store;
- the rest: the step's size and clocks, setting up.

Samples of ``libm``'s ``exp`` and ``log1p`` (the log-loss's and the catch-up's) are shown
apart. The times a sample are the part's share of the fit's own compiled training time
(``fit_report_["seconds_compute"]``). Next to them: ``_bound.adagrad_per_sample`` (AdaGrad
one sample a step over the store's 24-byte rows, no penalty, no loss), in the same run.

Needs ``perf`` (Debian's ``linux-perf``) and the kernel built with line tables, which
does not change its code: ``CFLAGS=-g python setup.py build_ext --inplace --force``.
Run from the repository root: ``python benchmarks/bench_kernel_profile.py [n_rows]``.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _table import machine, print_table

EPOCHS = 4
KERNEL = Path(__file__).resolve().parent.parent / "sklearn_cirrus" / "kernels"
SOURCES = {
    "_sgd.pyx": KERNEL / "_sgd.pyx",
    "_owed.pxd": KERNEL.parent / "model_table" / "_owed.pxd",
}
SAMPLE_IDS = "                    for j in range(indptr[i], indptr[i + 1]):"
# where each part begins, in the order of the files' lines: (file, the line's start, part);
# a line belongs to the last beginning above it
BEGINNINGS = [
    ("_owed.pxd", "", "the lazy penalty"),
    ("_sgd.pyx", "", "the rest"),
    ("_sgd.pyx", "cdef inline void update_row(", "the update"),
    ("_sgd.pyx", "cdef inline void loss_and_derivative(", "predictions and loss"),
    ("_sgd.pyx", "cdef struct Table:", "the rest"),
    ("_sgd.pyx", "cdef inline double missed_steps_share(", "the lazy penalty"),
    ("_sgd.pyx", "cdef inline void average_row(", "the rest"),
    ("_sgd.pyx", "cdef struct RowMap:", "the row map"),
    ("_sgd.pyx", "    if not catch_up and avg.w == NULL and snapshot == NULL:", "the lazy penalty"),
    ("_sgd.pyx", "cdef inline void release_rows(", "the row map"),
    ("_sgd.pyx", "cdef inline double plain_sgd_step(", "the rest"),
    ("_sgd.pyx", "                # each distinct row found", "the row map"),
    ("_sgd.pyx", "                for k in range((rows.n_touched + 1)", "the gradient"),
    ("_sgd.pyx", "                # loss and gradient of the minibatch", "predictions and loss"),
    # a sample's two loops over its ids: its prediction, then its gradient
    ("_sgd.pyx", SAMPLE_IDS, "predictions and loss"),
    ("_sgd.pyx", SAMPLE_IDS, "the gradient"),
    ("_sgd.pyx", "                # update and scatter", "the update"),
    ("_sgd.pyx", "                release_rows(&rows)", "the row map"),
    ("_sgd.pyx", "                end_step(", "the rest"),
    ("_sgd.pyx", "def train_dense(", "the rest"),
]
PARTS = ["the row map", "the lazy penalty", "predictions and loss", "the gradient", "the update"]


def parts_by_line() -> dict[tuple[str, int], str]:
    """``(file, line) -> part`` for every line of the kernel's sources."""
    owner = {}
    for name, path in SOURCES.items():
        marks = [(text, part) for file, text, part in BEGINNINGS if file == name]
        part, following = marks[0][1], 1
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if following < len(marks) and line.startswith(marks[following][0]):
                part = marks[following][1]
                following += 1
            owner[name, number] = part
        if following < len(marks):  # the kernel changed: its parts must be found again
            raise RuntimeError(f"{name} has no line starting {marks[following][0]!r}")
    return owner


def c_lines_to_source(c_file: Path) -> dict[int, tuple[str, int]]:
    """The Cython source line each line of the generated C belongs to."""
    mark = re.compile(r'/\* "(?:.*/)?([^/"]+)":(\d+)')
    owner, current = {}, None
    for number, line in enumerate(c_file.read_text().splitlines(), 1):
        found = mark.search(line)
        if found:
            current = (found.group(1), int(found.group(2)))
        owner[number] = current
    return owner


def child(data_dir: str) -> None:
    """The profiled fit: the problem read back, then the kernel alone at work."""
    from sklearn_cirrus import ServerlessSGDClassifier

    X, y = sp.load_npz(f"{data_dir}/X.npz"), np.load(f"{data_dir}/y.npy")
    model = ServerlessSGDClassifier(
        executor="sequential", n_workers=1, max_iter=EPOCHS, tol=None, random_state=0
    ).fit(X, y)
    report = model.fit_report_
    print(report["samples"], report["seconds_compute"])


def perf_report(data: Path, *sort: str) -> list[tuple[float, list[str]]]:
    out = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--sort", ",".join(sort)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        found = re.match(r"\s*([\d.]+)%\s+(.*)", line)
        if found:
            rows.append((float(found.group(1)), found.group(2).split()))
    return rows


def bound_rate(n_train: int, X) -> float:
    """AdaGrad's bare loop over the store's 24-byte rows (bench_kernel_bound.py), best of 3."""
    from bench_kernel_bound import STORE_ROW, _bound, aligned, best_rate  # (compiles _bound)

    table = aligned(np.full(X.shape[1], 1e-3, dtype=STORE_ROW))
    data, indices = X.data.astype(np.float64), X.indices.astype(np.int32)
    indptr = X.indptr.astype(np.int64)
    return best_rate(lambda: _bound.adagrad_per_sample(table, data, indices, indptr), n_train)


def main() -> None:
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if shutil.which("perf") is None:
        sys.exit("perf not found: apt-get install linux-perf")
    if not (KERNEL / "_sgd.c").exists():
        sys.exit("no kernels/_sgd.c: build in place (module doc)")
    print(f"machine: {machine()}")
    from _problems import hashed_split

    X, y, _, _ = hashed_split(n_train)
    with tempfile.TemporaryDirectory() as scratch:
        sp.save_npz(f"{scratch}/X.npz", X, compressed=False)
        np.save(f"{scratch}/y.npy", y)
        data = Path(scratch) / "perf.data"
        record = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-o", str(data)]
        started = time.perf_counter()
        fit = subprocess.run(
            [*record, sys.executable, __file__, "--child", scratch],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"profiled fit: {time.perf_counter() - started:.1f} s")
        samples, seconds = (float(v) for v in fit.stdout.split()[-2:])
        by_symbol = perf_report(data, "dso", "sym")
        by_line = perf_report(data, "srcline")
    kernel_so = next(Path(KERNEL).glob("_sgd*.so")).name
    c_owner = c_lines_to_source(KERNEL / "_sgd.c")
    owner = parts_by_line()
    shares = collections.Counter()
    for percent, (where, *_) in by_line:
        file, _, number = where.rpartition(":")
        if file == "_sgd.c" and number.isdigit():
            shares[owner.get(c_owner.get(int(number)), "the rest")] += percent
    kernel_share = sum(p for p, (dso, *_) in by_symbol if dso == kernel_so)
    if not shares:
        sys.exit("no line of _sgd.c in the profile: build with CFLAGS=-g (module doc)")
    libm = collections.Counter()
    for percent, (dso, *rest) in by_symbol:
        if dso.startswith("libm"):
            libm["libm: " + rest[-1].split("@")[0].lstrip("_")] += percent
    total = kernel_share + sum(libm.values())
    ns = 1e9 * seconds / samples
    rows = [
        [part, f"{100 * shares[part] / total:.1f}%", f"{ns * shares[part] / total:.0f}"]
        for part in [*PARTS, "the rest"]
    ]
    rows += [
        [name, f"{100 * share / total:.1f}%", f"{ns * share / total:.0f}"]
        for name, share in libm.most_common(3)
    ]
    rows.append(["the kernel in all", "100%", f"{ns:.0f}"])
    rate = bound_rate(n_train, X)
    rows.append(["bound: AdaGrad, a sample a step, 24-byte rows", "", f"{1e9 / rate:.0f}"])
    print(f"\none sequential worker, defaults, {EPOCHS} epochs: {samples / seconds:,.0f} samples/s")
    print(f"(the kernel's module and libm: {total:.1f}% of the fit's samples)\n")
    print_table(["part of a minibatch step", "share of the kernel", "ns a sample"], rows)
    print(f"\nkernel / bound: {samples / seconds / rate:.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
