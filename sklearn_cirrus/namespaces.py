"""The names of what a fit leaves on this machine while it runs, and their removal once
the process that made them is gone.

A fit stages its shards and keeps a shared-memory store under ``/dev/shm`` (or the
temporary folder). Its own cleanup removes them, on errors and signals too, but nothing
runs after ``SIGKILL`` (the OOM killer, a scheduler's hard stop). So every such folder is
named after its owner, ``sklearn-cirrus-<pid>-<start>-<random>``: the process id and the
process's start time (the id alone is reused by later processes). A folder whose owner is
no longer running is a leftover: :func:`remove_leftovers` removes those, at the start of
every fit that fans out and from ``sklearn-cirrus cleanup``.

Only folders of the current user are touched. A process of another PID namespace that
shares this ``/dev/shm`` (a container started with ``--ipc=host``) would look dead from
here: such set-ups should give each container its own ``/dev/shm`` (Docker's default).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from functools import cache
from pathlib import Path

PREFIX = "sklearn-cirrus-"
# <pid>-<start>-<random>; names of earlier versions had no start time
_OWNED = re.compile(rf"^{PREFIX}(\d+)-(?:(\d+)-)?[0-9a-f]{{32}}$")


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), None if unknown;
    raises ProcessLookupError when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command name may hold spaces and parentheses: fields follow the last ')'
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    except (OSError, IndexError, ValueError):
        return None


@cache
def _own_start_time() -> int:
    try:
        return _start_time(os.getpid()) or 0
    except ProcessLookupError:  # no /proc here
        return 0


def namespace_name() -> str:
    """A fresh name for a fit's shared-memory store or shards, naming this process as
    its owner (see module doc)."""
    pid, start = process_start()
    return f"{PREFIX}{pid}-{start}-{uuid.uuid4().hex}"


def shared_memory_root() -> Path:
    """``/dev/shm`` where it is writable (memory-backed), else the temporary folder."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def process_start() -> tuple[int, int]:
    """This process's id and start time: what names it as an owner (see module doc)."""
    return os.getpid(), _own_start_time()


def process_is_running(pid: int, start: int | None) -> bool:
    """Whether process ``pid``, started at ``start`` (None or 0: unknown), still runs
    on this machine."""
    try:
        running_since = _start_time(pid)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    # the id taken by a later process is not the owner
    return not start or running_since is None or start == running_since


def owner_is_running(name: str) -> bool:
    """Whether the process that named ``name`` still runs; True for names not ours."""
    owned = _OWNED.match(name)
    if owned is None:
        return True
    return process_is_running(int(owned[1]), owned[2] and int(owned[2]))


def leftovers(root: Path | None = None) -> list[Path]:
    """This user's folders under ``root`` (default: :func:`shared_memory_root`) whose
    owner is no longer running."""
    root = shared_memory_root() if root is None else Path(root)
    found = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.startswith(PREFIX) or owner_is_running(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_uid == os.getuid():
                found.append(Path(entry.path))
        except OSError:  # removed meanwhile
            continue
    return found


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def remove_leftovers(root: Path | None = None) -> list[tuple[Path, int]]:
    """Remove :func:`leftovers`; each folder removed with the bytes it held."""
    removed = []
    for folder in leftovers(root):
        try:
            size = folder_bytes(folder)
        except OSError:
            size = 0
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append((folder, size))
    return removed
