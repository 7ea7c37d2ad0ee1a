"""Datasets that live in storage, not in the driver: written once as shards, reused by fits.

A :class:`ShardedDataset` is a folder at any fsspec URL (a local path, ``memory://``,
``s3://bucket/prefix``...) holding shard files and a ``manifest.json``. It is written
once, from arrays by the driver or from files by the workers themselves (each converts
a byte range of the input), reopened later by URL, and removed only by :meth:`remove`.
Estimators fit on it and predict over it without the driver ever holding X; indexing
it by rows (as scikit-learn's cross-validation does) gives a view that reads only
those rows. Unlike a fit's own staging, shards keep the data as given: float32 stays
float32 and labels stay labels, encoded by each worker as it reads.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass

import fsspec
import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_consistent_length, column_or_1d

from ._extras import require
from .data import DataHandle
from .data.convert import (
    DEFAULT_CHUNK_BYTES,
    ConvertTask,
    byte_ranges,
    convert,
    parquet_parts,
    read_lines,
)
from .data.integrity import check_seal, read_members
from .data.staging import (
    DEFAULT_SHARD_BYTES,
    bytes_per_row,
)
from .data.table import Table, TableNumbers
from .data.writing import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_LABELS,
    ShardWriter,
    check_manifest,
    stored_dtype,
    summarize_targets,
    write_block,
)
from .exceptions import DamagedData
from .executors import WorkerResources
from .runtime.mapping import run_tasks


@dataclass(frozen=True)
class TargetSummary:
    """The targets of a dataset (or view), as fits need them without loading them."""

    n_samples: int
    labels: np.ndarray | None  # sorted distinct values, None past MAX_LABELS
    counts: np.ndarray | None
    mean_square: float | None

    @classmethod
    def of(cls, y: np.ndarray) -> TargetSummary:
        return cls.merge([summarize_targets(y)], y.dtype, y.shape[0])

    @classmethod
    def merge(cls, summaries: Sequence[dict], dtype, n_samples: int) -> TargetSummary:
        labels = counts = mean_square = None
        if all(s.get("labels") is not None for s in summaries):
            totals: dict = {}
            for s in summaries:
                for label, count in zip(s["labels"], s["counts"], strict=True):
                    totals[label] = totals.get(label, 0) + count
            if len(totals) <= MAX_LABELS:
                labels = np.asarray(sorted(totals), dtype=dtype)
                counts = np.asarray([totals[label] for label in sorted(totals)])
        if summaries and all(s.get("sumsq") is not None for s in summaries):
            mean_square = sum(s["sumsq"] for s in summaries) / max(n_samples, 1)
        return cls(n_samples, labels, counts, mean_square)


def _as_range(index: np.ndarray) -> np.ndarray | range:
    """``index`` as a range when it is one run of consecutive rows (a slice, a contiguous
    fold), which views read by ranges of shards; else as it is."""
    if index.shape[0] and np.array_equal(index, np.arange(index[0], index[0] + index.shape[0])):
        return range(int(index[0]), int(index[0]) + index.shape[0])
    return index


class ShardedDataset:
    """A dataset written once as shards at a URL, reopened by URL, removed when you say.

    Open an existing one with ``ShardedDataset(url)``; write one with
    :meth:`from_arrays` (or :meth:`from_svmlight`, converted by workers). Pass it to an
    estimator's ``fit``, ``predict``, ``score``... in place of ``X`` (the targets come
    from the dataset), or index it by rows (``dataset[rows]``) for a view that reads
    only those rows, in that order.

    Parameters
    ----------
    url : str
        The dataset's folder, any fsspec URL.
    storage_options : dict, default=None
        Passed to every filesystem call, the workers' too (credentials, endpoint...).

    Attributes
    ----------
    shape : tuple of int
        ``(n_samples, n_features)`` of this view.
    dtype : numpy.dtype
        Type of the stored values (float32 input stays float32).
    sparse : bool
        Whether X is stored as CSR.
    """

    def __init__(self, url: str, *, storage_options: dict | None = None):
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        fs, root = self._filesystem()
        where = f"{self.url}/{MANIFEST}"
        try:
            with fs.open(f"{root}/{MANIFEST}", "r") as f:
                manifest = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no dataset at {url!r}: it has no {MANIFEST}; write one with "
                "ShardedDataset.from_arrays or from_svmlight"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DamagedData(
                f"{where} is not valid JSON ({exc}): the dataset's manifest is damaged"
            ) from None
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("version", 0), int)
            or manifest.get("version", 0) > FORMAT_VERSION
        ):
            raise ValueError(
                f"{where} is not the manifest of a dataset this version can read "
                f"(format {FORMAT!r}, version {FORMAT_VERSION} or older)"
            )
        check_manifest(manifest, where)
        check_seal(manifest, where)
        self._manifest = manifest
        shard_rows = np.asarray([s["rows"] for s in manifest["shards"]], dtype=np.int64)
        self._shard_starts = np.concatenate([[0], np.cumsum(shard_rows)])
        # rows of a view, in its order: an array, or a range (a slice of rows, which the
        # driver need not hold row by row)
        self._index: np.ndarray | range | None = None
        # what the workers' reader runs on X (hashing, scaling), and the result's form
        self._transforms: tuple = ()
        self._form: tuple[int, bool] | None = None  # (n_features, sparse) after them

    def _filesystem(self):
        return fsspec.core.url_to_fs(self.url, **self.storage_options)

    # -- what it holds ---------------------------------------------------------------

    @property
    def n_samples(self) -> int:
        return int(self._shard_starts[-1]) if self._index is None else len(self._index)

    @property
    def n_features(self) -> int:
        """Width of X as estimators see it (after the view's transforms)."""
        return int(self._manifest["n_features"]) if self._form is None else self._form[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_samples, self.n_features)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._manifest["dtype"])

    @property
    def sparse(self) -> bool:
        return bool(self._manifest["sparse"]) if self._form is None else self._form[1]

    @property
    def columns(self) -> dict | None:
        """A table's column names, ``{"numeric": [...], "categorical": [...]}``; None for
        a dataset of numbers."""
        return self._manifest.get("table")

    @property
    def transforms(self) -> tuple:
        """What the workers' reader runs on each shard's X, in order."""
        return self._transforms

    def with_transform(self, transform, *, n_features: int, sparse: bool) -> ShardedDataset:
        """A view whose X the workers pass through ``transform`` (a picklable callable
        of a shard's X) as they read it: ``n_features`` wide, sparse or not."""
        view = copy.copy(self)
        view._transforms = (*self._transforms, transform)
        view._form = (n_features, sparse)
        return view

    @property
    def has_targets(self) -> bool:
        return self._manifest["targets"] is not None

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        view = "" if self._index is None else f", a view of {self._shard_starts[-1]} rows"
        return (
            f"ShardedDataset({self.url!r}, {self.n_samples} x {self.n_features}"
            f"{', sparse' if self.sparse else ''}, {self.dtype}{view})"
        )

    def __getitem__(self, key) -> ShardedDataset:
        """A view of some rows, in the order given: an integer array, a boolean mask or
        a slice (also as ``(rows, ...)``, the form scikit-learn's indexing uses)."""
        if isinstance(key, tuple):
            if len(key) != 2 or key[1] is not Ellipsis:
                raise IndexError("a ShardedDataset is indexed by rows only")
            key = key[0]
        view = copy.copy(self)
        if isinstance(key, slice) and not isinstance(self._index, np.ndarray):
            view._index = (range(self.n_samples) if self._index is None else self._index)[key]
            return view
        rows = np.arange(self.n_samples)[key]
        if rows.ndim != 1:
            raise IndexError("a ShardedDataset is indexed by rows only")
        view._index = _as_range(rows if self._index is None else self._index_array()[rows])
        return view

    def _index_array(self) -> np.ndarray:
        index = self._index
        return np.arange(index.start, index.stop, index.step) if isinstance(index, range) else index

    def _in_stored_order(self) -> bool:
        """Whether the view's rows come in the order they are stored (no reordering):
        a cross-validation fold's are, whatever rows it leaves out."""
        index = self._index
        if isinstance(index, range):
            return index.step > 0
        return index is None or bool(np.all(index[1:] > index[:-1]))

    # -- what fits ask of it ---------------------------------------------------------

    def target_summary(self) -> TargetSummary:
        """Labels and their counts, and the targets' mean square; from the manifest for
        a whole dataset, from the view's targets (read from the shards) for a view."""
        targets = self._manifest["targets"]
        if targets is None:
            raise ValueError(f"{self!r} has no targets; it was written without y")
        if not self._in_stored_order():
            return TargetSummary.of(self.targets())
        # whole shards from the manifest; only the parts of shards are read (a slice of a
        # dataset has two at most)
        shards = self._manifest["shards"]
        summaries = [
            shards[shard_id]["targets"]
            if rows is None
            else summarize_targets(self._read_shard_column(shard_id, "y")[rows])
            for shard_id, rows in self._shard_selection()
        ]
        return TargetSummary.merge(summaries, np.dtype(targets["dtype"]), self.n_samples)

    def targets(self) -> np.ndarray:
        """The view's targets, read from the shards (the driver holds these, never X)."""
        if not self.has_targets:
            raise ValueError(f"{self!r} has no targets; it was written without y")
        return self._read_column("y")

    def sample_weights(self) -> np.ndarray:
        """The view's sample weights (ones when written without them)."""
        if not self._manifest["sample_weight"]:
            return np.ones(self.n_samples)
        return self._read_column("sample_weight")

    def _read_shard_column(self, shard_id: int, name: str) -> np.ndarray:
        fs, root = self._filesystem()
        shard = self._manifest["shards"][shard_id]
        url = f"{self.url}/{shard['name']}"
        with fs.open(f"{root}/{shard['name']}", "rb") as f:  # (that column only)
            return read_members(f, url, shard.get("digest"), names={name})[name]

    def _read_column(self, name: str) -> np.ndarray:
        parts = []
        for shard_id, rows in self._shard_selection():
            column = self._read_shard_column(shard_id, name)
            parts.append(column if rows is None else column[rows])
        if not parts:
            return np.zeros(0)
        return self.restore_order(parts)

    def _sorted_order(self) -> np.ndarray:
        return np.argsort(self._index_array(), kind="stable")

    def _shard_selection(self) -> list[tuple[int, np.ndarray | None]]:
        """``(shard, rows within it or None for all)`` for every shard the view reads,
        rows in increasing order (a view's own order is restored by the caller)."""
        n_shards = len(self._manifest["shards"])
        if self._index is None:
            return [(shard_id, None) for shard_id in range(n_shards)]
        if isinstance(self._index, range) and self._index.step == 1:
            return self._range_selection(self._index.start, self._index.stop)
        index = self._index_array()
        ordered = index[self._sorted_order()]
        shard_of = np.searchsorted(self._shard_starts, ordered, side="right") - 1
        bounds = np.searchsorted(shard_of, np.arange(n_shards + 1))
        selection = []
        for shard_id in range(n_shards):
            rows = ordered[bounds[shard_id] : bounds[shard_id + 1]] - self._shard_starts[shard_id]
            if rows.shape[0] == 0:
                continue
            whole = rows.shape[0] == self._manifest["shards"][shard_id]["rows"] and np.array_equal(
                rows, np.arange(rows.shape[0])
            )
            selection.append((shard_id, None if whole else rows))
        return selection

    def _range_selection(self, start: int, stop: int) -> list[tuple[int, np.ndarray | None]]:
        """The selection of rows ``start`` to ``stop``: whole shards, and the parts of the
        two at its ends."""
        starts = self._shard_starts
        selection = []
        for shard_id in range(len(starts) - 1):
            first, last = max(start, starts[shard_id]), min(stop, starts[shard_id + 1])
            if first >= last:
                continue
            whole = first == starts[shard_id] and last == starts[shard_id + 1]
            rows = None if whole else np.arange(first, last) - starts[shard_id]
            selection.append((shard_id, rows))
        return selection

    def restore_order(self, per_shard: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate results computed shard by shard (in :meth:`handle` order) and put
        them in the view's row order."""
        values = np.concatenate(per_shard) if per_shard else np.zeros(0)
        if self._in_stored_order():
            return values
        return values[np.argsort(self._sorted_order())]

    def handle(self, *, batch_size: int = 256, classes: np.ndarray | None = None) -> DataHandle:
        """What workers need to read this view: its shards, its rows in them, and how to
        encode the labels (``classes``: each label becomes its index there)."""
        selection = self._shard_selection()
        shards = self._manifest["shards"]
        transforms = self._transforms
        if not transforms and self.columns is not None:
            if self.columns["categorical"]:
                raise ValueError(
                    f"{self!r} has categorical columns {self.columns['categorical'][:3]}...; "
                    "estimators need numbers: hash them first, e.g. "
                    "make_pipeline(ServerlessFeatureHasher(), ServerlessSGDClassifier())"
                )
            transforms = (TableNumbers(),)
        return DataHandle(
            url=self.url,
            n_samples=self.n_samples,
            n_features=int(self._manifest["n_features"]),
            sparse=self.sparse,
            batch_size=batch_size,
            shard_rows=tuple(
                shards[i]["rows"] if rows is None else int(rows.shape[0]) for i, rows in selection
            ),
            max_shard_bytes=max((shards[i]["bytes"] for i, _ in selection), default=0),
            storage_options=self.storage_options,
            shard_names=tuple(shards[i]["name"] for i, _ in selection),
            rows=None if self._index is None else tuple(rows for _, rows in selection),
            classes=classes,
            transforms=transforms,
            index_offset=self._manifest.get("index_offset", 0),
            shard_digests=tuple(shards[i].get("digest") for i, _ in selection),
            shard_counts=tuple(
                (shards[i].get("nnz"), (shards[i]["targets"] or {}).get("counts"))
                for i, _ in selection
            ),
        )

    def exists(self) -> bool:
        """Whether the dataset is still in its storage (not removed)."""
        fs, root = self._filesystem()
        return fs.exists(f"{root}/{MANIFEST}")

    def remove(self) -> None:
        """Delete the dataset (every shard and the manifest) from its storage."""
        fs, root = self._filesystem()
        if fs.exists(root):
            fs.rm(root, recursive=True)

    # -- writing ---------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        X,
        y=None,
        url: str | None = None,
        *,
        sample_weight=None,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        storage_options: dict | None = None,
    ) -> ShardedDataset:
        """Write in-memory ``X`` (dense or sparse), ``y`` and weights as a dataset.

        The rows keep their order. float32 X stays float32; other numbers become
        float64. Refuses a ``url`` that already holds a dataset (remove it first).
        """
        if url is None:
            raise ValueError("from_arrays needs the url to write the dataset to")
        X = check_array(
            X, accept_sparse="csr", dtype=[np.float64, np.float32], accept_large_sparse=True
        )
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        if sample_weight is not None:
            sample_weight = column_or_1d(np.asarray(sample_weight, dtype=np.float64))
            check_consistent_length(X, sample_weight)
        writer = DatasetWriter(url, storage_options)
        rows_per_shard = max(1, int(shard_bytes // bytes_per_row(X)))
        with writer.undo_on_error():
            for start in range(0, X.shape[0], rows_per_shard):
                rows = slice(start, start + rows_per_shard)
                writer.write(
                    f"part-00000-{start // rows_per_shard:04d}.npz",
                    X[rows],
                    None if y is None else y[rows],
                    None if sample_weight is None else sample_weight[rows],
                )
            return writer.finish(n_features=X.shape[1], sparse=sp.issparse(X), dtype=X.dtype)

    @classmethod
    def from_svmlight(
        cls,
        paths,
        url: str,
        *,
        n_features: int | None = None,
        zero_based: bool | str = "auto",
        dtype=np.float64,
        executor=None,
        n_workers: int = 2,
        worker_memory_mb: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        storage_options: dict | None = None,
    ) -> ShardedDataset:
        """Convert svmlight / LIBSVM files into a dataset, on workers.

        ``paths`` is a path, glob, folder or URL, or a list of them; each file is cut
        into ``chunk_bytes`` ranges (a compressed file is one), and each range is
        parsed and written as shards by a worker on ``executor`` (as the estimators'
        parameter). ``n_features`` and ``zero_based`` are as in
        :func:`sklearn.datasets.load_svmlight_file`: None takes the widest row of all
        the files, and 'auto' counts from 1 unless some file uses the index 0.
        """
        writer = DatasetWriter(url, storage_options)
        with writer.undo_on_error():
            parts = writer.convert(
                byte_ranges(paths, chunk_bytes, writer.storage_options),
                "svmlight",
                {"dtype": np.dtype(dtype).str},
                shard_bytes=shard_bytes,
                executor=executor,
                n_workers=n_workers,
                worker_memory_mb=worker_memory_mb,
            )
            smallest = [p["smallest_index"] for p in parts if p["smallest_index"] is not None]
            offset = 0 if zero_based is True else 1
            if zero_based == "auto" and 0 in smallest:
                offset = 0
            if offset and 0 in smallest:
                raise ValueError("Invalid index 0 in SVMlight/LibSVM data file.")
            width = max([p["n_columns"] for p in parts], default=0) - offset
            if n_features is None:
                n_features = width
            elif width > n_features:
                raise ValueError(
                    f"n_features was set to {n_features}, but input file contains {width} features"
                )
            return writer.finish(
                n_features=n_features, sparse=True, dtype=dtype, extra={"index_offset": offset}
            )

    @classmethod
    def from_csv(
        cls,
        paths,
        url: str,
        *,
        target=None,
        categorical=(),
        numeric=None,
        sep: str = ",",
        header: bool = True,
        names=None,
        executor=None,
        n_workers: int = 2,
        worker_memory_mb: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        storage_options: dict | None = None,
    ) -> ShardedDataset:
        """Convert CSV / TSV files (raw, with string columns) into a dataset, on workers.

        Columns are named by the first line (``header=True``), by ``names``, or by
        their positions (``"0"``, ``"1"``...); ``target``, ``categorical`` and ``numeric``
        take names or positions. ``numeric`` None: every column that is neither the
        target nor categorical. Numbers are kept as float32 (an empty cell is
        missing), categorical values as strings (empty: missing); hash them into
        features with :class:`~sklearn_cirrus.preprocessing.ServerlessFeatureHasher`.
        Criteo's click logs (tab-separated, no header: the label, 13 counts, 26
        hashed categories)::

            ShardedDataset.from_csv("day_*.tsv", url, sep="\\t", header=False,
                                    target=0, categorical=range(14, 40))

        Files are cut and converted by workers as in :meth:`from_svmlight`; needs
        pyarrow (``pip install sklearn-cirrus[files]``).
        """
        require("pyarrow.csv", what="ShardedDataset.from_csv", extra="files")

        writer = DatasetWriter(url, storage_options)
        if names is None:
            first = byte_ranges(paths, chunk_bytes, writer.storage_options)[0]
            line = read_lines(first, writer.storage_options).split(b"\n", 1)[0]
            cells = line.decode().rstrip("\r").split(sep)
            names = cells if header else [str(i) for i in range(len(cells))]
        names = [str(name) for name in names]

        def name_of(column) -> str:
            if isinstance(column, (int, np.integer)):
                return names[column]
            if column not in names:
                raise ValueError(f"no column {column!r}; the columns are {names}")
            return column

        target = None if target is None else name_of(target)
        categorical = [name_of(c) for c in categorical]
        if numeric is None:
            numeric = [n for n in names if n != target and n not in categorical]
        numeric = [name_of(c) for c in numeric]
        options = dict(
            sep=sep,
            header=header,
            names=names,
            target=target,
            numeric=numeric,
            categorical=categorical,
        )
        return writer.convert_table(
            byte_ranges(paths, chunk_bytes, writer.storage_options),
            "csv",
            options,
            shard_bytes=shard_bytes,
            executor=executor,
            n_workers=n_workers,
            worker_memory_mb=worker_memory_mb,
        )

    @classmethod
    def from_parquet(
        cls,
        paths,
        url: str,
        *,
        target=None,
        categorical=None,
        numeric=None,
        executor=None,
        n_workers: int = 2,
        worker_memory_mb: int | None = None,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        storage_options: dict | None = None,
    ) -> ShardedDataset:
        """Convert Parquet files into a dataset, on workers: a row group each (pyarrow).

        ``target`` names the target column; ``categorical`` the columns kept as strings
        (None: the string and binary columns), ``numeric`` those kept as float32 (None:
        every other column but the target). As :meth:`from_csv` otherwise.
        """
        pa = require("pyarrow", what="ShardedDataset.from_parquet", extra="files")
        import pyarrow.parquet as pq

        writer = DatasetWriter(url, storage_options)
        parts = parquet_parts(paths, writer.storage_options)
        if not parts:
            raise ValueError(f"the Parquet files of {paths!r} have no row groups")
        with fsspec.open(parts[0].path, "rb", **writer.storage_options) as f:
            schema = pq.ParquetFile(f).schema_arrow
        names = list(schema.names)
        for column in [target, *(categorical or ()), *(numeric or ())]:
            if column is not None and column not in names:
                raise ValueError(f"no column {column!r}; the columns are {names}")
        if categorical is None:
            textual = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
            categorical = [
                n for n in names if n != target and any(t(schema.field(n).type) for t in textual)
            ]
        if numeric is None:
            numeric = [n for n in names if n != target and n not in categorical]
        options = dict(target=target, numeric=list(numeric), categorical=list(categorical))
        return writer.convert_table(
            parts,
            "parquet",
            options,
            shard_bytes=shard_bytes,
            executor=executor,
            n_workers=n_workers,
            worker_memory_mb=worker_memory_mb,
        )

    @classmethod
    def from_dask(
        cls,
        X,
        y=None,
        url: str | None = None,
        *,
        storage_options: dict | None = None,
    ) -> ShardedDataset:
        """Write a dask array or dataframe (and ``y``, a dask array or series with the
        same row blocks) as a dataset, one shard a block, each written by the Dask
        worker that computes it: nothing is gathered in the driver.

        Runs on the active Dask scheduler (a ``distributed.Client`` if one is open):
        the workers must reach ``url``. A dataframe's string columns are kept as
        categorical columns, to hash with
        :class:`~sklearn_cirrus.preprocessing.ServerlessFeatureHasher`.
        """
        import dask

        if url is None:
            raise ValueError("from_dask needs the url to write the dataset to")
        writer = DatasetWriter(url, storage_options)
        frame = hasattr(X, "columns")
        if not frame:
            if X.ndim != 2:
                raise ValueError(f"Expected a 2D dask array, got {X.ndim} dimension(s)")
            X = X.rechunk({1: -1})  # whole rows in each block
        blocks = X.to_delayed()  # an array's: a grid of one column; a dataframe's: a list
        blocks = list(blocks.ravel()) if hasattr(blocks, "ravel") else list(blocks)
        targets = [None] * len(blocks)
        if y is not None:
            if not hasattr(y, "npartitions"):
                y = y.rechunk((X.chunks[0],))
            targets = list(y.to_delayed())
            if len(targets) != len(blocks):
                raise ValueError(
                    f"y has {len(targets)} blocks and X {len(blocks)}; they must match"
                )
        parts = [
            dask.delayed(write_block)(
                block, target, writer.url, f"part-{i:05d}-0000.npz", writer.storage_options
            )
            for i, (block, target) in enumerate(zip(blocks, targets, strict=True))
        ]
        with writer.undo_on_error():
            for entry in dask.compute(*parts):
                writer.add(entry)
            meta = X._meta
            table = Table.from_frame(meta) if frame else None
            if table is not None and table.categorical_names:
                return writer.finish(
                    n_features=X.shape[1],
                    sparse=False,
                    dtype=np.float32,
                    extra={"table": table.column_names()},
                )
            dtypes = list(meta.dtypes) if frame else [meta.dtype]
            return writer.finish(
                n_features=X.shape[1],
                sparse=sp.issparse(meta),
                dtype=stored_dtype(dtypes),
            )


class DatasetWriter(ShardWriter):
    """A :class:`~sklearn_cirrus.data.writing.ShardWriter` that has workers convert
    files into its shards and opens the dataset it finishes."""

    def convert(
        self,
        ranges,
        file_format: str,
        options: dict,
        *,
        shard_bytes: int,
        executor,
        n_workers: int,
        worker_memory_mb: int | None,
    ) -> list[dict]:
        """Have workers convert the files' ranges into shards; add them, and return what
        each worker said of its range."""
        tasks = [
            ConvertTask(
                source, part, self.url, file_format, options, shard_bytes, self.storage_options
            )
            for part, source in enumerate(ranges)
        ]
        parts = run_tasks(
            convert,
            tasks,
            executor=executor,
            n_workers=n_workers,
            resources=WorkerResources(memory_mb=worker_memory_mb),
        )
        for part in parts:
            for entry in part["shards"]:
                self.add(entry)
        return parts

    def convert_table(self, ranges, file_format: str, options: dict, **run) -> ShardedDataset:
        """Convert files of table columns (``options``: target, numeric, categorical) and
        finish the dataset; nothing of it is left if that fails."""
        numeric, categorical = list(options["numeric"]), list(options["categorical"])
        with self.undo_on_error():
            self.convert(ranges, file_format, options, **run)
            return self.finish(
                n_features=len(numeric) + len(categorical),
                sparse=False,
                dtype=np.float32,
                extra={"table": {"numeric": numeric, "categorical": categorical}},
            )

    def finish(self, **manifest) -> ShardedDataset:
        super().finish(**manifest)
        return ShardedDataset(self.url, storage_options=self.storage_options)
