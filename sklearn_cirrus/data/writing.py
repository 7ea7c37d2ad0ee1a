"""Writing a dataset's folder: its shard files, then, last, its sealed manifest.

The driver writes shards from arrays; workers converting files (``convert``) or Dask
blocks (``write_block``) write theirs and return their manifest entries, which the
driver gathers before it writes the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import contextmanager

import fsspec
import numpy as np
import scipy.sparse as sp

from ..exceptions import DamagedData
from .integrity import sealed
from .staging import private_file, private_folder, write_shard
from .table import Table

MANIFEST = "manifest.json"
FORMAT = "sklearn-cirrus-dataset"
FORMAT_VERSION = 1
# Distinct target values up to which a shard counts its labels (a classification
# target); a regression target has more, and keeps only its sum and sum of squares.
MAX_LABELS = 1000


def summarize_targets(y: np.ndarray | None) -> dict:
    """A shard's targets in a few numbers: label counts (when few), sum, sum of squares."""
    if y is None:
        return {}
    summary: dict = {"labels": None, "counts": None, "sum": None, "sumsq": None}
    labels, counts = np.unique(y, return_counts=True)
    if labels.shape[0] <= MAX_LABELS:
        summary["labels"], summary["counts"] = labels.tolist(), counts.tolist()
    if np.issubdtype(y.dtype, np.number):
        y = y.astype(np.float64)
        summary["sum"], summary["sumsq"] = float(y.sum()), float(np.dot(y, y))
    return summary


class ShardWriter:
    """Writes shard files into a new dataset folder and, last, its manifest.

    The manifest is written last, so that a folder without one (an interrupted write)
    is never taken for a dataset. Workers converting files use :func:`write_part` and
    the driver gathers their entries with :meth:`add`. ``finish`` returns the manifest
    written (``dataset.DatasetWriter`` runs the conversions on workers and opens the
    dataset).
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        if self.fs.exists(f"{self.root}/{MANIFEST}"):
            raise FileExistsError(
                f"{url!r} already holds a dataset; open it with ShardedDataset(url), or "
                "remove it first"
            )
        private_folder(self.fs, self.root)
        self.shards: list[dict] = []

    @contextmanager
    def undo_on_error(self):
        """Remove the shards written so far if writing fails (never other files)."""
        try:
            yield
        except BaseException:
            for path in self.fs.glob(f"{self.root}/part-*.npz"):
                self.fs.rm(path)
            raise

    def write(self, name: str, X, y=None, sample_weight=None) -> None:
        self.add(write_part(self.fs, f"{self.root}/{name}", name, X, y, sample_weight))

    def add(self, entry: dict) -> None:
        self.shards.append(entry)

    def finish(self, *, n_features: int, sparse: bool, dtype, extra: dict | None = None) -> dict:
        with_targets = [s for s in self.shards if s["targets"]]
        if with_targets and len(with_targets) != len(self.shards):
            raise ValueError("some shards have targets and some do not")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n_features": int(n_features),
            "sparse": bool(sparse),
            "dtype": np.dtype(dtype).str,
            "targets": (
                {"dtype": _common_dtype([s["targets_dtype"] for s in self.shards])}
                if with_targets
                else None
            ),
            "sample_weight": any(s["sample_weight"] for s in self.shards),
            "shards": self.shards,
            **(extra or {}),
        }
        with self.fs.open(f"{self.root}/{MANIFEST}", "w") as f:
            json.dump(sealed(manifest), f)
        private_file(self.fs, f"{self.root}/{MANIFEST}")
        return manifest


# what every manifest holds, and every shard entry in it
MANIFEST_FIELDS = ("n_features", "sparse", "dtype", "targets", "sample_weight", "shards")
SHARD_FIELDS = ("name", "rows", "bytes", "targets", "sample_weight")


def check_manifest(manifest: dict, where: str) -> None:
    """Refuse a manifest that misses a field or whose counts cannot be, naming it."""
    missing = [name for name in MANIFEST_FIELDS if name not in manifest]
    for i, shard in enumerate(manifest.get("shards") or []):
        if not isinstance(shard, dict):
            missing.append(f"shards[{i}]")
            continue
        missing += [f"shards[{i}].{name}" for name in SHARD_FIELDS if name not in shard]
    if missing:
        raise DamagedData(f"{where} misses {', '.join(missing[:5])}: the manifest is damaged")
    counts = [manifest["n_features"]] + [s["rows"] for s in manifest["shards"]]
    if not all(isinstance(n, int) and n >= 0 for n in counts):
        raise DamagedData(f"{where} has counts that cannot be (n_features, rows): damaged")


def stored_dtype(dtypes) -> np.dtype:
    """float32 when every column is float32, else float64 (as ``from_arrays`` keeps)."""
    return np.dtype(np.float32 if all(np.dtype(d) == np.float32 for d in dtypes) else np.float64)


def write_block(block, target, url: str, name: str, storage_options: dict) -> dict:
    """A Dask worker's part of ``from_dask``: write its block (an array, a sparse matrix
    or a DataFrame partition) and targets as one shard; its manifest entry."""
    if hasattr(block, "columns"):
        table = Table.from_frame(block)
        block = table if table.categorical_names else block.to_numpy(stored_dtype(block.dtypes))
    elif not sp.issparse(block):
        block = np.asarray(block, dtype=stored_dtype([block.dtype]))
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    target = None if target is None else np.asarray(target)
    return write_part(fs, f"{root}/{name}", name, block, target)


def write_part(fs, path: str, name: str, X, y=None, sample_weight=None) -> dict:
    """Write one shard file; its manifest entry."""
    size, digest = write_shard(fs, path, X, y, sample_weight)
    return {
        "name": name,
        "rows": int(X.shape[0]),
        "bytes": size,
        "digest": digest,
        "nnz": int(X.nnz) if sp.issparse(X) else None,
        "targets": summarize_targets(y),
        "targets_dtype": None if y is None else y.dtype.str,
        "sample_weight": sample_weight is not None,
    }


def _common_dtype(dtypes: Sequence[str]) -> str:
    return np.result_type(*[np.dtype(d) for d in dtypes]).str
