"""What a worker changed in a model, as one entry of a remote store's log of changes.

Against a remote store, a worker trains on a whole local copy of the model (its
*replica*), in place, with the compiled kernel, and every few minibatches sends one
entry holding what it changed in the rows it touched, and applies to its replica the
entries the other workers sent meanwhile (``trainers.ReplicaTrainer``). The store only
appends entries to a log and folds them into its base copy now and then: it moves
arrays, never single values.

Changes add up, except the lazy L2 penalty (``kernels/_sgd.pyx``). A row carries a
clock, the time up to which its decay has been applied, and two workers that both
bring a row up to date must not both decay it. So an entry gives, per row, the clock the
worker's copy of the row reached and the change *at that clock*: the new value minus
the old value decayed up to that clock. Applying an entry first decays the receiving
row up to the entry's clock if it is behind (decaying up to a time is idempotent,
unlike adding a decay), or decays the change up to the row's clock if the row is ahead,
then adds. For plain SGD and the momentum methods the decay between two clocks does not
depend on the row, so this is exact; for AdaGrad it depends on the row's accumulator,
taken as it was when the worker first brought the row up to date; with L1 the
penalty's own columns are added like any change (an approximation the local stores do
not need).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..model_table import (
    LOG_DECAY_SLOT,
    PENALTY_STEPS_SLOT,
    ModelTable,
    OptimizerConfig,
    _delta,
    block_of,
    table_views,
)
from ..model_table._delta import (
    clock_codes,
    entry_changes,
    from_half_bits,
    from_varint_steps,
    half_bits,
    take_rows,
    varint_steps,
)

# seconds a worker told to fold the log has to do it before another may be told (should
# it have died first)
FOLD_CLAIM_SECONDS = 60


class Exchange(NamedTuple):
    """What a store's exchange with its log returns."""

    folded: int  # entries folded into the store's base so far
    end: int  # the log's end, as a position counted from its first entry ever
    meta: np.ndarray  # the key's counters, every worker's steps included
    # the entries from the cursor on, but the caller's own (bytes, or byte arrays from
    # the Ray actor); None: folded away
    entries: list[bytes] | None
    fold: bool = False  # whether the caller is to fold the log into the store's base


# an entry's header: rows, the columns of params, state and aux, how the rows carry
# clocks (_NO_CLOCKS, _ROW_CLOCKS, _CLOCK_CODES), the bytes a change travels in (8, 4 or
# 2) and the bytes of the rows' ids, then the clocks' base (a float64). The row ids follow
# (``row_id_bytes``), then the clocks, then each group of columns' changes (in half
# precision, after the rows' scales for the group, when it has columns).
_HEADER = 8
# the clocks: none; one a row (float64, or single-precision offsets from the base); or a
# dictionary (its size, an int64, its clocks, float64, then a byte a row: their codes)
_NO_CLOCKS, _ROW_CLOCKS, _CLOCK_CODES = 0, 1, 2
_FLOAT_TYPES = {8: "<f8", 4: "<f4"}  # (half floats: model_table._delta)


def row_id_bytes(rows: np.ndarray) -> bytes:
    """Row ids as the zigzag varints of their differences (``_delta.varint_steps``):
    about one byte a row against an int32's four, where the bytes of a Lambda-shaped
    link are the remote store's bound (docs/benchmarks.md)."""
    return varint_steps(np.ascontiguousarray(rows, dtype=np.int64))


@dataclass(frozen=True)
class DeltaEntry:
    """Changes to rows ``rows`` of a table; ``clocks`` (one per row, or None when the
    rows are not penalised) are the penalty clocks the changes are expressed at.

    ``float_bytes``: the precision the changes travel in (held as float64 values it
    represents exactly): 8, 4 (single) or 2 (half precision, each row's changes in a
    group of columns scaled by ``2**-scale`` to fit half floats' range: ``scales``,
    int8, a row's for its params, state and aux). The clocks travel as they are, as a
    byte a row coding the entry's few distinct clocks (``_delta.clock_codes``); past 256
    distinct, one a row (below 8 bytes, as single-precision offsets from
    ``base_clock``, to which ``entry_since`` has rounded them)."""

    rows: np.ndarray
    params: np.ndarray
    state: np.ndarray
    aux: np.ndarray  # every aux column's change, but the clock's when there are ``clocks``
    clocks: np.ndarray | None
    float_bytes: int = 8
    base_clock: float = 0.0
    scales: np.ndarray | None = None

    def to_bytes(self) -> bytes:

        n = self.rows.size
        ids = row_id_bytes(self.rows)
        shape = [n, self.params.shape[1], self.state.shape[1], self.aux.shape[1]]
        clocks, coded = [], None
        if self.clocks is not None:  # (a run's rows reach a few dozen clocks: coded)
            coded = clock_codes(np.ascontiguousarray(self.clocks, dtype=np.float64))
            if coded is not None:
                values, codes = coded
                clocks = [np.array([values.size], "<i8").tobytes(), values.tobytes(), codes]
            elif self.float_bytes < 8:
                clocks = [(self.clocks - self.base_clock).astype("<f4").tobytes()]
            else:
                clocks = [self.clocks.astype("<f8").tobytes()]
        how = _NO_CLOCKS if self.clocks is None else _CLOCK_CODES if coded else _ROW_CLOCKS
        header = [*shape, how, self.float_bytes, len(ids)]
        parts = [np.array(header, dtype="<i8").tobytes()]
        parts += [np.array([self.base_clock], dtype="<f8").tobytes(), ids, *clocks]
        groups = (self.params, self.state, self.aux)
        if self.float_bytes == 2:  # a group of columns: its rows' scales, its changes
            for group, changes in enumerate(groups):
                if changes.shape[1]:
                    scales = np.ascontiguousarray(self.scales[:, group])
                    parts.append(scales.tobytes())
                    parts.append(half_bits(np.ascontiguousarray(changes), scales).tobytes())
        else:
            dtype = _FLOAT_TYPES[self.float_bytes]
            parts.extend(changes.astype(dtype).tobytes() for changes in groups)
        return b"".join(parts)

    def where(self, mask: np.ndarray) -> DeltaEntry:
        """The entry of the rows ``mask`` selects."""
        return DeltaEntry(
            self.rows[mask],
            self.params[mask],
            self.state[mask],
            self.aux[mask],
            None if self.clocks is None else self.clocks[mask],
            self.float_bytes,
            self.base_clock,
            None if self.scales is None else self.scales[mask],
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> DeltaEntry:
        return cls._decoded(_WireEntry(blob))

    @classmethod
    def _decoded(cls, wire: _WireEntry) -> DeltaEntry:

        groups = []
        for group, (columns, raw) in enumerate(zip(wire.columns, wire.groups, strict=True)):
            if wire.float_bytes == 2:
                changes = from_half_bits(raw, wire.scales[:, group].copy())
            else:
                changes = raw.astype(np.float64)
            groups.append(changes.reshape(wire.rows.size, columns))
        rows = wire.rows.astype(np.intp)
        return cls(rows, *groups, wire.clocks, wire.float_bytes, wire.base_clock, wire.scales)


class _WireEntry:
    """An entry's parts as it travels (``DeltaEntry.to_bytes``): views into its bytes,
    the changes not decoded (``groups``: params', state's, aux's; ``scales`` of half
    precision's rows, a group a column)."""

    def __init__(self, blob):
        header = np.frombuffer(blob, dtype="<i8", count=_HEADER - 1)
        n, p, s, a, clocked, self.float_bytes, id_bytes = (int(value) for value in header)
        if clocked not in (_NO_CLOCKS, _ROW_CLOCKS, _CLOCK_CODES):
            raise ValueError(f"an entry's clocks are coded in no known way ({clocked})")
        (base_clock,) = np.frombuffer(blob, dtype="<f8", offset=8 * (_HEADER - 1), count=1)
        self.base_clock, self.columns = float(base_clock), (p, s, a)
        at = 8 * _HEADER
        self.rows = from_varint_steps(
            np.frombuffer(blob, dtype=np.uint8, offset=at, count=id_bytes), n
        )
        at += id_bytes
        self.clocks = None
        single = self.float_bytes < 8
        if clocked == _CLOCK_CODES:
            (size,) = np.frombuffer(blob, dtype="<i8", offset=at, count=1)
            values = np.frombuffer(blob, dtype="<f8", offset=at + 8, count=int(size))
            at += 8 + values.nbytes
            codes = np.frombuffer(blob, dtype=np.uint8, offset=at, count=n)
            at += n
            if n and int(codes.max()) >= values.size:
                raise ValueError("an entry's clock codes point past its clocks")
            self.clocks = values[codes]
        elif clocked == _ROW_CLOCKS:
            clocks = np.frombuffer(blob, dtype="<f4" if single else "<f8", offset=at, count=n)
            at += clocks.nbytes
            # (in double precision: a float32 offset plus a float would stay float32)
            self.clocks = clocks.astype(np.float64) + (base_clock if single else 0.0)
        half = self.float_bytes == 2
        self.scales = np.zeros((n, 3), dtype=np.int8) if half else None
        self.groups = []
        for group, columns in enumerate(self.columns):
            if half and columns:
                self.scales[:, group] = np.frombuffer(blob, dtype=np.int8, offset=at, count=n)
                at += n
            dtype = "<u2" if half else _FLOAT_TYPES[self.float_bytes]
            self.groups.append(np.frombuffer(blob, dtype=dtype, offset=at, count=n * columns))
            at += self.groups[-1].nbytes


def _clocked(optimizer: OptimizerConfig, table: ModelTable) -> bool:
    return table.aux.shape[0] > 0 and optimizer.l2 > 0


def rows_of(table: ModelTable, rows: np.ndarray) -> ModelTable:
    """Copies of rows ``rows`` of every array of ``table``; an array of no rows (plain
    SGD's state) stays one of no rows."""

    block = block_of(table)
    if block is not None:
        # the arrays interleave in one block (model_table.table_views): one gather of its
        # rows rather than one an array
        rows_block = take_rows(block, np.asarray(rows, dtype=np.int64))
        return table_views(rows_block, table.params.shape[1], table.optimizer, table.meta.copy())

    def copy(array):
        return np.take(array, rows, axis=0) if array.shape[0] else array

    return ModelTable(
        copy(table.params), copy(table.state), copy(table.aux), table.meta.copy(), table.optimizer
    )


@dataclass(frozen=True)
class SharedRows:
    """How much a replica's run damps its changes of the rows other workers change too
    (``runtime.trainers``): ``counts``, how many of the run's ``samples`` touched each
    row; a row's change is multiplied by ``1 / (1 + spread * share)``, ``share`` the
    samples that touched it over all."""

    counts: np.ndarray  # int32, one a row of the table
    samples: int
    spread: float


def entry_since(
    table: ModelTable,
    rows: np.ndarray,
    before: ModelTable,
    float_bytes: int = 8,
    state_scale: float = 1.0,
    shared: SharedRows | None = None,
) -> DeltaEntry:
    """The entry of what ``table`` (a replica) changed in ``rows`` since ``before``
    (``rows_of`` those rows), each row's change expressed at the clock it reached.

    Below 8 ``float_bytes``, the entry's changes are rounded to that precision and
    ``table``'s rows are set to the values the store rebuilds from it; a state that
    gained each squared gradient ``state_scale`` times has its change divided by it,
    in ``table`` too; with ``shared``, the changes of the rows many samples touched
    are damped, in ``table`` too (``entry_changes``)."""

    optimizer = table.optimizer
    # the clocks travel as offsets from the penalty clock of the optimizer's rule
    # (``kernels/_sgd.pyx``: AdaGrad's counts penalty steps, the SGD family's log-decay)
    clock_slot = PENALTY_STEPS_SLOT if optimizer.name == "adagrad" else LOG_DECAY_SLOT
    base_clock = float(table.meta[clock_slot])
    changes = entry_changes(
        optimizer.name == "adagrad",
        optimizer.l2,
        optimizer.adagrad_epsilon,
        optimizer.penalised_rows,
        _clocked(optimizer, table),
        table.params,
        *(_some_rows(array) for array in (table.state, table.aux)),
        np.ascontiguousarray(rows, dtype=np.int64),
        before.params,
        *(_some_rows(array) for array in (before.state, before.aux)),
        float_bytes,
        base_clock,
        state_scale,
        *(() if shared is None else (shared.counts, shared.samples, shared.spread)),
    )
    *changes, scales = changes
    return DeltaEntry(rows, *changes, float_bytes, base_clock, scales)


def _some_rows(array: np.ndarray) -> np.ndarray:
    """``array``, or for one of no rows, one of no columns either (a memoryview's shape)."""
    return array if array.shape[0] else np.zeros((0, 0))


def apply_entry(table: ModelTable, entry: DeltaEntry | bytes) -> None:
    """Add ``entry`` to ``table`` in place, each row's penalty first brought to the
    entry's clock, or the change brought to the row's (module doc). ``entry`` may be
    one as it travels (bytes, or a uint8 array): in half precision, its changes are
    added as they are decoded, with no array of them made."""

    optimizer, half = table.optimizer, None
    wire = None if isinstance(entry, DeltaEntry) else _WireEntry(entry)
    if wire is not None and wire.float_bytes != 2:
        entry, wire = DeltaEntry._decoded(wire), None
    if wire is None:
        rows, clocks = np.ascontiguousarray(entry.rows, dtype=np.int64), entry.clocks
        changes = [np.ascontiguousarray(c) for c in (entry.params, entry.state, entry.aux)]
    else:  # (the change arrays only tell the groups' columns)
        rows, clocks, half = wire.rows.astype(np.int64), wire.clocks, (wire.scales, *wire.groups)
        changes = [np.zeros((0, columns)) for columns in wire.columns]
    if not table.state.shape[0]:  # (a table without state takes none)
        changes[1] = np.zeros((changes[1].shape[0], 0))
    _delta.apply_entry(
        optimizer.name == "adagrad",
        optimizer.l2,
        optimizer.adagrad_epsilon,
        optimizer.penalised_rows,
        table.params,
        _some_rows(table.state),
        _some_rows(table.aux),
        rows,
        clocks if clocks is not None and _clocked(optimizer, table) else None,
        *changes,
        half,
    )


class EntryLog:
    """The latest entries of one key, for a store that applies each entry to its own
    table as it arrives (the Ray actor's): workers catch up from it, and one that fell
    behind the ``keep_bytes`` it keeps loads the whole table again."""

    def __init__(self, keep_bytes: int):
        self.keep_bytes = keep_bytes
        self.entries: deque[bytes] = deque()
        self.start = 0  # the position of the first entry kept
        self.bytes = 0

    @property
    def end(self) -> int:
        return self.start + len(self.entries)

    def append(self, entry: bytes) -> None:
        self.entries.append(entry)
        self.bytes += len(entry)
        while self.bytes > self.keep_bytes and len(self.entries) > 1:
            self.bytes -= len(self.entries.popleft())
            self.start += 1

    def since(self, cursor: int) -> list[bytes] | None:
        if cursor < self.start:
            return None
        return list(self.entries)[cursor - self.start :]
