"""Converting text files into dataset shards: a map over byte ranges, run by workers.

The driver only lists the input files and cuts them into byte ranges; each worker reads
its range (the lines that start in it), parses them and writes its shards next to the
others, returning their manifest entries. A compressed file cannot be cut and is one
range. Nothing of the data passes through the driver.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import fsspec
import numpy as np

from .staging import bytes_per_row
from .table import Table
from .writing import write_part

# Bytes of text one worker parses at once: with the parsed arrays, well within a
# worker's memory (parsed CSR takes about as much as its text).
DEFAULT_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ByteRange:
    """The lines of ``path`` that start in ``[start, stop)``; ``stop`` None: to the end."""

    path: str
    start: int = 0
    stop: int | None = None
    compression: str | None = None


@dataclass(frozen=True)
class ConvertTask:
    """One worker's part of a conversion: a byte range in, shards under ``url`` out."""

    source: ByteRange
    part: int
    url: str
    file_format: str
    options: dict
    shard_bytes: int
    storage_options: dict = field(default_factory=dict)


def byte_ranges(paths, chunk_bytes: int, storage_options: dict | None = None) -> list[ByteRange]:
    """Cut the files named by ``paths`` (a path, glob or folder, or a list of them, on any
    fsspec filesystem) into ranges of about ``chunk_bytes``, in file-name order."""
    storage_options = storage_options or {}
    ranges = []
    for spec in [paths] if isinstance(paths, (str, os.PathLike)) else list(paths):
        spec = os.fspath(spec)
        fs, _ = fsspec.core.url_to_fs(spec, **storage_options)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        found = sorted(fs.expand_path(spec, recursive=True))
        files = [path for path in found if fs.isfile(path)]
        if not files:
            raise FileNotFoundError(f"no files match {spec!r}")
        for path in files:
            url = path if protocol in ("file", "local") else f"{protocol}://{path}"
            compression = fsspec.utils.infer_compression(path)
            size = fs.size(path)
            if compression is not None or size <= chunk_bytes:
                ranges.append(ByteRange(url, 0, None, compression))
                continue
            for start in range(0, size, chunk_bytes):
                ranges.append(ByteRange(url, start, min(start + chunk_bytes, size)))
    return ranges


def read_lines(source: ByteRange, storage_options: dict) -> bytes:
    """The whole lines that start in the range (a line belongs to the range of its
    first byte, so that ranges share no line and miss none)."""
    with fsspec.open(source.path, "rb", compression=source.compression, **storage_options) as f:
        if source.stop is None:
            return f.read()
        if source.start > 0:
            f.seek(source.start - 1)
            f.readline()  # the end of a line that started in the previous range
        position = f.tell()
        if position >= source.stop:
            return b""
        text = f.read(source.stop - position)
        if not text.endswith(b"\n"):
            text += f.readline()
        return text


def parse_svmlight(text: bytes, options: dict):
    """``(X, y, smallest index)`` of svmlight lines, indices as written (zero-based)."""
    from sklearn.datasets import load_svmlight_file

    if not text.strip():
        return None
    X, y = load_svmlight_file(io.BytesIO(text), zero_based=True, dtype=np.dtype(options["dtype"]))
    smallest = int(X.indices.min()) if X.nnz else None
    return X, y, smallest


def parse_csv(text: bytes, options: dict, at_file_start: bool):
    """``(Table, y)`` of CSV lines (pyarrow's reader): the numeric columns as float32
    (empty: missing), the categorical ones as bytes (empty: missing), the target as
    read."""
    import pyarrow as pa
    import pyarrow.csv as pv

    if at_file_start and options["header"]:
        text = text[text.index(b"\n") + 1 :] if b"\n" in text else b""
    if not text.strip():
        return None
    numeric, categorical, target = options["numeric"], options["categorical"], options["target"]
    # malloc, not pyarrow's jemalloc, whose reserved address space (a gigabyte) would
    # count against a worker's memory limit (RLIMIT_AS) in every later invocation
    pa.set_memory_pool(pa.system_memory_pool())
    table = pv.read_csv(
        pa.py_buffer(text),
        read_options=pv.ReadOptions(column_names=options["names"], use_threads=False),
        parse_options=pv.ParseOptions(delimiter=options["sep"]),
        convert_options=pv.ConvertOptions(
            column_types={
                **{name: pa.float32() for name in numeric},
                **{name: pa.binary() for name in categorical},
            },
            include_columns=[name for name in (target, *numeric, *categorical) if name],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return arrow_columns(table, options)


def arrow_columns(table, options: dict):
    """``(Table, y)`` of a pyarrow table: the numeric columns as float32 (null: missing),
    the categorical ones as bytes (null or empty: missing), the target as stored."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numeric, categorical, target = options["numeric"], options["categorical"], options["target"]
    n_rows = table.num_rows
    numbers = np.empty((n_rows, len(numeric)), dtype=np.float32)
    # (whole arrays, nulls filled by pyarrow: ChunkedArray.to_numpy of a column with nulls
    # goes through a conversion that reserves another gigabyte of address space)
    for j, name in enumerate(numeric):
        column = pc.cast(table[name], pa.float32())
        numbers[:, j] = pc.fill_null(column, np.nan).combine_chunks().to_numpy()
    categories = {
        name: pc.fill_null(pc.cast(table[name], pa.binary()), b"") for name in categorical
    }
    widest = max([pc.max(pc.binary_length(c)).as_py() or 1 for c in categories.values()] or [1])
    strings = np.empty((n_rows, len(categorical)), dtype=f"S{widest}")
    for j, name in enumerate(categorical):
        strings[:, j] = categories[name].combine_chunks().to_numpy(zero_copy_only=False)
    y = None
    if target is not None:
        if table[target].null_count:
            raise ValueError(f"the target column {target!r} has missing values")
        y = table[target].combine_chunks().to_numpy(zero_copy_only=False)
        y = y.astype(str) if y.dtype == object else y
    return Table(numbers, strings, tuple(numeric), tuple(categorical)), y


def read_parquet(source: ByteRange, options: dict, storage_options: dict):
    """``(Table, y)`` of the row groups ``[start, stop)`` of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa.set_memory_pool(pa.system_memory_pool())  # as parse_csv
    with fsspec.open(source.path, "rb", **storage_options) as f:
        groups = list(range(source.start, source.stop))
        columns = [
            c for c in (options["target"], *options["numeric"], *options["categorical"]) if c
        ]
        table = pq.ParquetFile(f).read_row_groups(groups, columns=columns, use_threads=False)
    return arrow_columns(table, options)


def parquet_parts(paths, storage_options: dict | None = None) -> list[ByteRange]:
    """Every row group of the Parquet files named by ``paths`` (as for byte_ranges), one
    part each: ``ByteRange(path, group, group + 1)`` counts row groups, not bytes."""
    import pyarrow.parquet as pq

    parts = []
    for whole in byte_ranges(paths, float("inf"), storage_options):
        with fsspec.open(whole.path, "rb", **(storage_options or {})) as f:
            n_groups = pq.ParquetFile(f).metadata.num_row_groups
        parts.extend(ByteRange(whole.path, group, group + 1) for group in range(n_groups))
    return parts


def _parse(task: ConvertTask, text: bytes | None):
    if task.file_format == "svmlight":
        return parse_svmlight(text, task.options)
    if task.file_format == "parquet":
        return (*read_parquet(task.source, task.options, task.storage_options), None)
    parsed = parse_csv(text, task.options, at_file_start=task.source.start == 0)
    return None if parsed is None else (*parsed, None)


def convert(task: ConvertTask) -> dict:
    """Parse one byte range and write it as shards; their entries and what the driver
    needs to finish the manifest (for svmlight, the widest and smallest index)."""
    fs, root = fsspec.core.url_to_fs(task.url, **task.storage_options)
    text = None if task.file_format == "parquet" else read_lines(task.source, task.storage_options)
    parsed = _parse(task, text)
    if parsed is None:
        return {"shards": [], "n_columns": 0, "smallest_index": None}
    X, y, smallest = parsed
    rows_per_shard = max(1, int(task.shard_bytes // bytes_per_row(X)))
    shards = []
    for k, start in enumerate(range(0, X.shape[0], rows_per_shard)):
        name = f"part-{task.part:05d}-{k:04d}.npz"
        rows = slice(start, start + rows_per_shard)
        shards.append(
            write_part(fs, f"{root}/{name}", name, X[rows], None if y is None else y[rows])
        )
    return {"shards": shards, "n_columns": X.shape[1], "smallest_index": smallest}
