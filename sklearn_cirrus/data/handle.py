"""Where a staged dataset lives: all a worker needs to find and prepare its shards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import fsspec
import numpy as np


@dataclass(frozen=True)
class DataHandle:
    """Where a staged dataset lives and how it is cut; small and picklable.

    A fit's own staging writes shards ready to train on. A
    :class:`~sklearn_cirrus.ShardedDataset` is written once, as the user gave it, so its
    handle also says how a worker prepares a shard it reads (``load_shard``): which of
    its rows to keep (``rows``, one entry a shard, None for all of them), which
    transforms to run on X (hashing, scaling), how to encode the targets
    (``classes``: labels become their index in it) and whether to shuffle the rows
    (``shuffle_seed``, drawn anew for each epoch by the driver).
    """

    url: str
    n_samples: int
    n_features: int
    sparse: bool
    batch_size: int
    shard_rows: tuple[int, ...]
    max_shard_bytes: int
    storage_options: dict = field(default_factory=dict)
    # a dataset's shard file names, when they are not numbered 0..n_shards-1 in order
    shard_names: tuple[str, ...] | None = None
    rows: tuple[np.ndarray | None, ...] | None = None
    transforms: tuple[Callable, ...] = ()
    classes: np.ndarray | None = None
    shuffle_seed: int | None = None
    # stored column indices minus this are the features' (svmlight files count from 1)
    index_offset: int = 0
    # each shard's digest as written (data.integrity), checked as it is read; None: not
    # recorded (a dataset written before digests were)
    shard_digests: tuple[str | None, ...] | None = None
    # each shard's non-zeros and label counts as written (None where not recorded),
    # checked the first time a process reads it
    shard_counts: tuple[tuple[int | None, list[int] | None], ...] | None = None

    @property
    def n_shards(self) -> int:
        return len(self.shard_rows)

    def shard_url(self, shard_id: int) -> str:
        name = (
            f"shard-{shard_id:06d}.npz" if self.shard_names is None else self.shard_names[shard_id]
        )
        return f"{self.url.rstrip('/')}/{name}"

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return fsspec.core.url_to_fs(self.url, **self.storage_options)
