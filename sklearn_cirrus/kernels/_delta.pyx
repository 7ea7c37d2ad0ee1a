# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""A remote store's log entry added to a replica, compiled: one pass over the entry's
rows where numpy took a dozen (``store/delta_log.py`` states the maths), and the
distinct rows a run of minibatches touches, in order, where ``IdIndexer`` takes five passes."""

from libc.math cimport exp, sqrt

import numpy as np


cdef extern from *:
    void prefetch "__builtin_prefetch"(const void *address) noexcept nogil
    int __builtin_ctzll(unsigned long long bits) noexcept nogil

# how many rows ahead the passes over a run's rows prefetch them: the rows are in
# increasing order but far apart, a pattern the hardware's prefetcher does not follow,
# and each pass would otherwise wait on every row's cache miss in turn
cdef int ROWS_AHEAD = 16


cdef inline double decay(
    bint adagrad, double l2, double epsilon, double accumulated, double since, double until
) noexcept nogil:
    """The L2 decay factor from clock ``since`` to the later clock ``until``."""
    if adagrad:
        return exp(-l2 * (until - since) / (sqrt(accumulated) + epsilon))
    return exp(until - since)


def apply_entry(
    bint adagrad,
    double l2,
    double epsilon,
    long long penalised_rows,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    const long long[::1] rows,
    const double[:, :] change,
    const double[:, :] state_change,
    const double[:, :] aux_change,
    const double[::1] clocks,
):
    """Add the entry's changes to rows ``rows`` of the table in place. With ``clocks``
    (not None), a penalised row behind its entry's clock first decays up to it and takes
    that clock; one ahead takes the change decayed up to its own clock. ``aux_change``
    fills the last columns of ``aux`` (all of them without clocks)."""
    cdef Py_ssize_t n = rows.shape[0], n_cols = params.shape[1]
    cdef Py_ssize_t first_aux = aux.shape[1] - aux_change.shape[1]
    cdef Py_ssize_t i, k
    cdef long long row
    cdef double own, clock, factor
    cdef bint behind
    cdef bint clocked = clocks is not None
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&params[rows[i + ROWS_AHEAD], 0])
            row = rows[i]
            if clocked and row < penalised_rows:
                own, clock = aux[row, 0], clocks[i]
                behind = clock > own if adagrad else clock < own
                for k in range(n_cols):
                    if behind:
                        factor = decay(
                            adagrad, l2, epsilon, state[row, k] if adagrad else 0.0, own, clock
                        )
                        params[row, k] = params[row, k] * factor + change[i, k]
                    else:
                        factor = decay(
                            adagrad, l2, epsilon, state[row, k] if adagrad else 0.0, clock, own
                        )
                        params[row, k] += change[i, k] * factor
                if behind:
                    aux[row, 0] = clock
            else:
                for k in range(n_cols):
                    params[row, k] += change[i, k]
            for k in range(state_change.shape[1]):
                state[row, k] += state_change[i, k]
            for k in range(aux_change.shape[1]):
                aux[row, first_aux + k] += aux_change[i, k]


cdef inline double to_single(double value, bint single) noexcept nogil:
    """``value`` rounded to the nearest single-precision float, with ``single``."""
    return <double> <float> value if single else value


def entry_changes(
    bint adagrad,
    double l2,
    double epsilon,
    long long penalised_rows,
    bint clocked,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    const long long[::1] rows,
    const double[:, :] old_params,
    const double[:, :] old_state,
    const double[:, :] old_aux,
    bint single=False,
    double base_clock=0.0,
):
    """What rows ``rows`` of the table changed since their copies ``old_*``:
    ``(change, state_change, aux_change, clocks)``. With ``clocked``, ``clocks`` are the
    rows' penalty clocks now and a penalised row's change is from its old value decayed
    up to its clock; ``aux_change`` leaves the clock column out.

    With ``single``, every change, and every clock's offset from ``base_clock``, is
    rounded to single precision, to travel in half the bytes, and the table's rows are
    set to their old values plus the rounded changes: the table stays equal to what the
    store rebuilds from them, exactly."""
    cdef Py_ssize_t n = rows.shape[0], n_cols = params.shape[1]
    cdef Py_ssize_t n_state = old_state.shape[1] if old_state.shape[0] else 0
    cdef Py_ssize_t first_aux = 1 if clocked else 0
    cdef Py_ssize_t n_aux = (old_aux.shape[1] if old_aux.shape[0] else 0) - first_aux
    change_array = np.empty((n, n_cols))
    state_array = np.empty((n, n_state))
    aux_array = np.empty((n, max(n_aux, 0)))
    clocks_array = np.empty(n if clocked else 0)
    cdef double[:, ::1] change = change_array
    cdef double[:, ::1] state_change = state_array
    cdef double[:, ::1] aux_change = aux_array
    cdef double[::1] clocks = clocks_array
    cdef Py_ssize_t i, k
    cdef long long row
    cdef double old
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&params[rows[i + ROWS_AHEAD], 0])
            row = rows[i]
            if clocked and row < penalised_rows:
                clocks[i] = base_clock + to_single(aux[row, 0] - base_clock, single)
                aux[row, 0] = clocks[i]
            elif clocked:  # (a clock no penalty reads: the store leaves it as it is)
                clocks[i] = aux[row, 0]
            for k in range(n_cols):
                old = old_params[i, k]
                if clocked and row < penalised_rows:
                    old = old * decay(
                        adagrad, l2, epsilon, old_state[i, k] if adagrad else 0.0,
                        old_aux[i, 0], clocks[i],
                    )
                change[i, k] = to_single(params[row, k] - old, single)
                if single:
                    params[row, k] = old + change[i, k]
            for k in range(n_state):
                state_change[i, k] = to_single(state[row, k] - old_state[i, k], single)
                if single:
                    state[row, k] = old_state[i, k] + state_change[i, k]
            for k in range(n_aux):
                old = old_aux[i, first_aux + k]
                aux_change[i, k] = to_single(aux[row, first_aux + k] - old, single)
                if single:
                    aux[row, first_aux + k] = old + aux_change[i, k]
    return change_array, state_array, aux_array, clocks_array if clocked else None


def take_rows(const double[:, ::1] block, const long long[::1] rows):
    """``block[rows]``, prefetched a few rows ahead (``np.take`` waits on each row)."""
    taken = np.empty((rows.shape[0], block.shape[1]))
    cdef double[:, ::1] out = taken
    cdef Py_ssize_t i, k, n = rows.shape[0], width = block.shape[1]
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&block[rows[i + ROWS_AHEAD], 0])
            for k in range(width):
                out[i, k] = block[rows[i], k]
    return taken


def distinct(const int[::1] ids, unsigned long long[::1] seen):
    """The distinct values of ``ids``, in increasing order: ``seen`` (a bit per possible
    id, ``bitmap_words(n)`` words, all zero) marks the ones present, and is left all zero
    again. A bit a value keeps the marks of a large model in the L2 cache. In order, the
    rows of a replica are then read and written in the direction the hardware prefetches,
    not at random."""
    cdef Py_ssize_t i, word, n = 0
    cdef unsigned long long bit, bits
    with nogil:
        for i in range(ids.shape[0]):
            bit = 1ULL << (ids[i] & 63)
            if not seen[ids[i] >> 6] & bit:
                seen[ids[i] >> 6] |= bit
                n += 1
    out = np.empty(n, dtype=np.int64)
    cdef long long[::1] found = out
    n = 0
    with nogil:
        for word in range(seen.shape[0]):
            bits = seen[word]
            if bits:
                seen[word] = 0
                while bits:
                    found[n] = word * 64 + __builtin_ctzll(bits)
                    n += 1
                    bits &= bits - 1
    return out


def bitmap_words(Py_ssize_t n):
    """Words of the bitmap ``distinct`` needs for ids below ``n``."""
    return (n + 63) // 64


def unmarked(const long long[::1] rows, unsigned long long[::1] marks):
    """The values of ``rows`` (distinct) not marked in the bitmap ``marks`` yet, in
    order; marks them. A run of minibatches that spans shards takes its rows' copies
    once, from the first piece that touches them."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    cdef long long[::1] found = out
    cdef Py_ssize_t i, n = 0
    cdef unsigned long long bit
    with nogil:
        for i in range(rows.shape[0]):
            bit = 1ULL << (rows[i] & 63)
            if not marks[rows[i] >> 6] & bit:
                marks[rows[i] >> 6] |= bit
                found[n] = rows[i]
                n += 1
    return out[:n]


def unmark(const long long[::1] rows, unsigned long long[::1] marks):
    """Clear the marks of ``rows`` in ``marks``."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(rows.shape[0]):
            marks[rows[i] >> 6] &= ~(1ULL << (rows[i] & 63))
