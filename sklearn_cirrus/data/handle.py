"""Where a staged dataset lives: all a worker needs to find its shards."""

from __future__ import annotations

from dataclasses import dataclass, field

import fsspec


@dataclass(frozen=True)
class DataHandle:
    """Where a staged dataset lives and how it is cut; small and picklable."""

    url: str
    n_samples: int
    n_features: int
    sparse: bool
    batch_size: int
    shard_rows: tuple[int, ...]
    max_shard_bytes: int
    storage_options: dict = field(default_factory=dict)

    @property
    def n_shards(self) -> int:
        return len(self.shard_rows)

    def shard_url(self, shard_id: int) -> str:
        return f"{self.url.rstrip('/')}/shard-{shard_id:06d}.npz"

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return fsspec.core.url_to_fs(self.url, **self.storage_options)
