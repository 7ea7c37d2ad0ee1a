"""What makes a shard the one that was written: its zip's CRC-32s, checked as it is read,
and their digest, kept in the manifest.

``np.savez`` writes an uncompressed zip whose directory holds each member's CRC-32.
Reading a member checks its bytes against that CRC (a byte damaged anywhere in the data
is found), and the digest of the directory's names, sizes and CRCs against the one the
manifest recorded when the shard was written (a shard copied over another, or replaced,
is found). Both cost one CRC-32 pass over the bytes a worker reads anyway
(benchmarks/bench_integrity.py). The manifest holds a CRC-32 of its own content too
(:func:`sealed`): a count or label edited, or a damaged byte that leaves it valid JSON,
is found as it is opened. A dataset written before digests were recorded opens as
before: its CRCs are checked, its shards' identity and its manifest cannot be.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np

from ..exceptions import DamagedData

try:  # the same CRC-32 at about 28 GB/s here, where zlib's runs at 4 (the checks' cost)
    from zlib_ng.zlib_ng import crc32
except ImportError:
    from zlib import crc32

# a zip member's local header: 30 bytes, then its name and extra field (their lengths at
# bytes 26-29)
_LOCAL_HEADER_BYTES = 30


class CheckedFiles:
    """Local files whose bytes a process has checked, by device, inode, size and times:
    a worker checks a shard's bytes the first time it reads it, not at every epoch (a
    CRC-32 pass is 10% of two workers' training on two cores). A file changed since, as
    its size, times and inode tell, is checked again. Bounded: forgets all past
    ``MAX_FILES``."""

    MAX_FILES = 100_000

    def __init__(self):
        self._seen: set[tuple] = set()

    @staticmethod
    def key(f) -> tuple:
        """The identity of the open local file ``f`` as it is now."""
        stat = os.fstat(f.fileno())
        return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

    def __contains__(self, key: tuple) -> bool:
        return key in self._seen

    def clear(self) -> None:
        self._seen.clear()

    def add(self, key: tuple) -> None:
        if len(self._seen) >= self.MAX_FILES:
            self._seen.clear()
        self._seen.add(key)


CHECKED_FILES = CheckedFiles()


def digest(members: list[zipfile.ZipInfo]) -> str:
    """The digest of a shard's zip directory: its members' names, sizes and CRC-32s."""
    listed = b"".join(
        m.filename.encode() + struct.pack("<QI", m.file_size, m.CRC)
        for m in sorted(members, key=lambda m: m.filename)
    )
    return f"crc32:{zlib.crc32(listed):08x}"


def digest_of(payload: bytes) -> str:
    """The digest of a shard's file, from its bytes (as written)."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return digest(archive.infolist())


MANIFEST_DIGEST = "manifest_digest"


def _manifest_bytes(manifest: dict) -> bytes:
    rest = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST}
    return json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()


def sealed(manifest: dict) -> dict:
    """``manifest`` with the CRC-32 of the rest of it, so that an edit or a damaged byte
    that leaves it valid JSON (a count, a label) is seen as it is read."""
    return {**manifest, MANIFEST_DIGEST: f"crc32:{zlib.crc32(_manifest_bytes(manifest)):08x}"}


def check_seal(manifest: dict, where: str) -> None:
    """Refuse a manifest that its own digest does not match (one written before manifests
    had a digest is taken as it is)."""
    said = manifest.get(MANIFEST_DIGEST)
    if said is not None and sealed(manifest)[MANIFEST_DIGEST] != said:
        raise DamagedData(
            f"{where} does not match its own digest ({said}): the manifest is damaged or was edited"
        )


def read_members(
    f,
    url: str,
    expected_digest: str | None = None,
    names: set[str] | None = None,
    *,
    check_bytes: bool = True,
) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` in the open file ``f`` (of ``url``; ``names``: only
    those), each member's bytes checked against its CRC-32 (unless ``check_bytes`` is
    False: they were, and the file has not changed since), and the directory against
    ``expected_digest`` (None: not recorded). Raises :class:`DamagedData` naming ``url``
    when anything differs."""
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
        if expected_digest is not None and digest(members) != expected_digest:
            raise DamagedData(
                f"{url} is not the shard its dataset's manifest recorded (its contents' "
                "checksum differs): it was replaced or damaged; write the dataset again"
            )
        wanted = [m for m in members if names is None or _array_name(m, url) in names]
        size = f.seek(0, os.SEEK_END)
        for member in wanted:
            # (a damaged offset or size would seek nowhere, or allocate for bytes not there)
            end = member.header_offset + _LOCAL_HEADER_BYTES + member.compress_size
            if member.header_offset < 0 or end > size:
                raise DamagedData(
                    f"{url} is damaged: {member.filename!r} would lie past the file's end; "
                    "write the dataset again"
                )
        return {_array_name(m, url): _read_member(f, m, url, check_bytes) for m in wanted}
    except DamagedData:
        raise
    except (zipfile.BadZipFile, EOFError, struct.error, ValueError, zlib.error) as exc:
        raise DamagedData(f"{url} is damaged: {exc}; write the dataset again") from exc


def _array_name(member: zipfile.ZipInfo, url: str) -> str:
    if not member.filename.endswith(".npy"):
        raise DamagedData(f"{url} holds {member.filename!r}, not an array of a shard")
    return member.filename[: -len(".npy")]


def _read_member(f, member: zipfile.ZipInfo, url: str, check_bytes: bool = True) -> np.ndarray:
    """One member's array, read in place from its offset (one copy, into the array) and
    checked against its CRC-32."""
    f.seek(member.header_offset)
    header = f.read(_LOCAL_HEADER_BYTES)
    name_bytes, extra_bytes = struct.unpack("<HH", header[26:30])
    f.seek(member.header_offset + _LOCAL_HEADER_BYTES + name_bytes + extra_bytes)
    if member.compress_type == zipfile.ZIP_STORED:
        raw = bytearray(member.file_size)
        if f.readinto(raw) != member.file_size:
            raise DamagedData(f"{url} is truncated in {member.filename!r}")
    else:  # (np.savez_compressed's): inflated, then checked as the stored ones
        raw = bytearray(zlib.decompress(f.read(member.compress_size), -zlib.MAX_WBITS))
    if check_bytes and crc32(raw) != member.CRC:
        raise DamagedData(
            f"{url} is damaged: {member.filename!r} does not match its CRC-32; write the "
            "dataset again"
        )
    return _npy_array(raw, url)


def _npy_array(raw: bytearray, url: str) -> np.ndarray:
    """The array of an ``.npy`` file's bytes, over those bytes (no copy)."""
    header = io.BytesIO(raw)
    version = np.lib.format.read_magic(header)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran_order, dtype = read_header(header)
    if dtype.hasobject:
        raise DamagedData(f"{url} holds Python objects, which shards never do")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")
