"""A parameter store in shared memory, for workers in local processes.

Every array is a ``.npy`` file under ``/dev/shm`` (POSIX shared memory on Linux; a
temporary folder elsewhere) mapped into each process with ``numpy.memmap``, so a worker
reconnects from the folder's path alone and reads only the pages its rows live on.

Compiled kernels update the mapped arrays in place, lock-free, Hogwild-style (Recht et
al., 2011): a worker may read a row while another updates it, and a rare concurrent
update of the same coordinate is lost, which asynchronous SGD tolerates. Table adds to
one key (from workers on pulled rows) and counter increments go through numpy and are
serialised by an advisory file lock (``flock``): without it, two processes adding to the
same rows lost a quarter of their updates in a tight loop (numpy's read-modify-write of a
whole row block is far wider than a compiled kernel's one coordinate).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model_table import META_SIZE, OptimizerConfig, block_width, table_views
from ..namespaces import namespace_name, shared_memory_root
from .base import ArrayStore

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _private(path: Path) -> Path:
    """``path`` created empty, readable by its owner only (0600), whatever the umask."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    return path


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"store key and counter names must match {_NAME.pattern}, got {name!r}")
    return name


@dataclass(frozen=True)
class SharedMemoryHandle:
    root: str

    def connect(self) -> SharedMemoryStore:
        return SharedMemoryStore(root=self.root)


class SharedMemoryStore(ArrayStore):
    """Arrays in shared memory, updated lock-free by local processes (see module doc)."""

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            root = shared_memory_root() / namespace_name()
            Path(root).mkdir(mode=0o700)
        elif not Path(root).is_dir():
            raise ConnectionError(f"shared-memory store {str(root)!r} does not exist (deleted?)")
        self.root = Path(root)
        self._open: dict[str, tuple] = {}
        self._counters: dict[str, np.ndarray] = {}
        self._lock_files: dict[str, int] = {}

    def _path(self, name: str, suffix: str) -> Path:
        return self.root / f"{_checked(name)}.{suffix}"

    def _allocate(self, key, shape, optimizer):
        self._open.pop(key, None)
        block_shape = (shape[0], block_width(shape[1], optimizer))
        for suffix, array_shape in (("block", block_shape), ("meta", (META_SIZE,))):
            np.lib.format.open_memmap(
                _private(self._path(key, suffix)), mode="w+", shape=array_shape
            )
        spec = {"optimizer": dataclasses.asdict(optimizer), "n_cols": shape[1]}
        _private(self._path(key, "json")).write_text(json.dumps(spec))

    def _arrays(self, key):
        if key not in self._open:
            try:
                spec = json.loads(self._path(key, "json").read_text())
            except FileNotFoundError:
                raise KeyError(f"no parameters named {key!r} in store {str(self.root)!r}") from None
            block, meta = (np.load(self._path(key, s), mmap_mode="r+") for s in ("block", "meta"))
            config = OptimizerConfig(**spec["optimizer"])
            self._open[key] = table_views(block, spec["n_cols"], config, meta)
        return self._open[key]

    @contextmanager
    def _locked(self, name: str):
        """Hold the namespace-wide lock ``name`` (shared by every process attached)."""
        if name not in self._lock_files:
            self._lock_files[name] = os.open(
                self._path(name, "lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        descriptor = self._lock_files[name]
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _add_lock(self, key):
        return self._locked(key)

    def _counter(self, name: str) -> np.ndarray:
        if name not in self._counters:
            path = self._path(name, "counter")
            if not path.exists():
                # create under a private name, then link: two creators never clobber a value
                scratch = _private(self.root / f".{uuid.uuid4().hex}")
                np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float64, shape=(1,))
                try:
                    os.link(scratch, path)
                except FileExistsError:
                    pass
                finally:
                    scratch.unlink()
            self._counters[name] = np.load(path, mmap_mode="r+")
        return self._counters[name]

    def incr(self, name, amount=1.0):
        counter = self._counter(name)
        with self._locked("counters"):
            counter[0] += amount
            return float(counter[0])

    def get(self, name):
        if name not in self._counters and not self._path(name, "counter").exists():
            return 0.0
        return float(self._counter(name)[0])

    def close(self):
        self._open.clear()
        self._counters.clear()
        for descriptor in self._lock_files.values():
            os.close(descriptor)
        self._lock_files.clear()

    def delete(self):
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def handle(self):
        return SharedMemoryHandle(str(self.root))
