# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""A remote store's log entry added to a replica, compiled: one pass over the entry's
rows where numpy took a dozen (``store/delta_log.py`` states the maths), and the
distinct rows a run of minibatches touches, in order, where ``IdIndexer`` takes five passes."""

from libc.math cimport INFINITY, NAN, exp, fabs, sqrt
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

import numpy as np


cdef extern from *:
    void prefetch "__builtin_prefetch"(const void *address) noexcept nogil
    int __builtin_ctzll(unsigned long long bits) noexcept nogil
    int __builtin_popcountll(unsigned long long bits) noexcept nogil

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


cdef struct Penalty:
    bint adagrad
    double l2
    double epsilon
    long long penalised_rows


cdef inline void add_row(
    Penalty *penalty,
    long long row,
    double clock,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    const double *change,
    const double *state_change,
    const double *aux_change,
    Py_ssize_t n_state,
    Py_ssize_t n_aux,
) noexcept nogil:
    """Add one row's changes (an entry's; see ``apply_entry``); ``clock`` is NaN for a
    row without one."""
    cdef Py_ssize_t k, n_cols = params.shape[1], first_aux = aux.shape[1] - n_aux
    cdef double own, factor
    cdef bint behind, adagrad = penalty.adagrad
    if clock == clock and row < penalty.penalised_rows:
        own = aux[row, 0]
        behind = clock > own if adagrad else clock < own
        for k in range(n_cols):
            if behind:
                factor = decay(
                    adagrad, penalty.l2, penalty.epsilon, state[row, k] if adagrad else 0.0,
                    own, clock,
                )
                params[row, k] = params[row, k] * factor + change[k]
            else:
                factor = decay(
                    adagrad, penalty.l2, penalty.epsilon, state[row, k] if adagrad else 0.0,
                    clock, own,
                )
                params[row, k] += change[k] * factor
        if behind:
            aux[row, 0] = clock
    else:
        for k in range(n_cols):
            params[row, k] += change[k]
    for k in range(n_state):
        state[row, k] += state_change[k]
    for k in range(n_aux):
        aux[row, first_aux + k] += aux_change[k]


def apply_entry(
    bint adagrad,
    double l2,
    double epsilon,
    long long penalised_rows,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    const long long[::1] rows,
    const double[::1] clocks,
    const double[:, ::1] change,
    const double[:, ::1] state_change,
    const double[:, ::1] aux_change,
    half=None,
):
    """Add the entry's changes to rows ``rows`` of the table in place. With ``clocks``
    (not None), a penalised row behind its entry's clock first decays up to it and takes
    that clock; one ahead takes the change decayed up to its own clock. ``aux_change``
    fills the last columns of ``aux`` (all of them without clocks).

    ``half``: the changes in half precision as they travel, ``(scales, params' bits,
    state's bits, aux's bits)`` (a row's bits after the other's; ``scales``, int8: a
    row's powers of two, a group a column), decoded row by row as they are added; the
    change arrays then only tell the groups' columns (they hold no row)."""
    cdef Py_ssize_t i, k, n = rows.shape[0], n_cols = params.shape[1]
    cdef Py_ssize_t n_state = state_change.shape[1], n_aux = aux_change.shape[1]
    cdef Penalty penalty = Penalty(adagrad, l2, epsilon, penalised_rows)
    cdef bint clocked = clocks is not None
    cdef long long row
    if half is not None:
        scales, change_bits, state_bits, aux_bits = half
        apply_half(
            &penalty, params, state, aux, rows, clocks, scales, change_bits, state_bits,
            aux_bits, n_state, n_aux,
        )
        return
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&params[rows[i + ROWS_AHEAD], 0])
            row = rows[i]
            add_row(
                &penalty, row, clocks[i] if clocked else NAN, params, state, aux,
                &change[i, 0], &state_change[i, 0] if n_state else NULL,
                &aux_change[i, 0] if n_aux else NULL, n_state, n_aux,
            )


cdef void apply_half(
    Penalty *penalty,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    const long long[::1] rows,
    const double[::1] clocks,
    const signed char[:, ::1] scales,
    const unsigned short[::1] change_bits,
    const unsigned short[::1] state_bits,
    const unsigned short[::1] aux_bits,
    Py_ssize_t n_state,
    Py_ssize_t n_aux,
):
    """``apply_entry``'s loop over an entry in half precision."""
    cdef Py_ssize_t i, k, n = rows.shape[0], n_cols = params.shape[1]
    cdef bint clocked = clocks is not None
    cdef long long row
    # a row's decoded changes: params', state's, aux's
    decoded_array = np.empty(n_cols + n_state + n_aux + 1)
    cdef double[::1] decoded = decoded_array
    cdef double *change = &decoded[0]
    cdef double *state_change = change + n_cols
    cdef double *aux_change = state_change + n_state
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&params[rows[i + ROWS_AHEAD], 0])
            row = rows[i]
            for k in range(n_cols):
                change[k] = from_half(change_bits[i * n_cols + k], scales[i, 0])
            for k in range(n_state):
                state_change[k] = from_half(state_bits[i * n_state + k], scales[i, 1])
            for k in range(n_aux):
                aux_change[k] = from_half(aux_bits[i * n_aux + k], scales[i, 2])
            add_row(
                penalty, row, clocks[i] if clocked else NAN, params, state, aux, change,
                state_change, aux_change, n_state, n_aux,
            )


cdef inline double to_single(double value, bint single) noexcept nogil:
    """``value`` rounded to the nearest single-precision float, with ``single``."""
    return <double> <float> value if single else value


cdef inline double to_half(double value) noexcept nogil:
    """``value`` (scaled below 2**15 in magnitude) rounded to 11 significant bits, a
    half-precision float's, by Veltkamp's splitting (exact in IEEE arithmetic; the
    extension is compiled without fused multiply-adds, which would break it); below
    2**-14, half floats' normal range, zero."""
    cdef double split = value * 4398046511105.0  # (2**42 + 1)
    cdef double high = split - (split - value)
    return high if fabs(high) >= 6.103515625e-05 else 0.0


cdef inline bint rows_contiguous(const double[:, :] array) noexcept:
    return array.shape[0] == 0 or array.shape[1] < 2 or array.strides[1] == sizeof(double)


cdef inline signed char half_scale(double largest) noexcept nogil:
    """The power of two that brings ``largest`` (a row's largest change in a group of
    columns) to [2**14, 2**15), near the top of the half floats' range: the row's
    smaller changes keep 11 significant bits down to 2**-28 of it, and go to zero
    below (``to_half``). Read from the bits (a row of one column: a call to ``frexp``
    would cost as much as the rest)."""
    cdef uint64_t bits
    memcpy(&bits, &largest, 8)
    cdef int exponent = <int> ((bits >> 52) & 0x7FF) - 1022  # (frexp's)
    if largest == 0.0:
        return 0
    return <signed char> max(min(exponent - 15, 127), -128)


cdef inline double power_of_two(int exponent) noexcept nogil:
    """``2.0 ** exponent``, for a scale's exponent (within int8's range), from its bits."""
    cdef uint64_t bits = <uint64_t> (exponent + 1023) << 52
    cdef double value
    memcpy(&value, &bits, 8)
    return value


cdef inline void round_row_to_half(
    double *values, const double *old, double *changes, Py_ssize_t n, signed char *scale
) noexcept nogil:
    """``changes[k]`` holding nothing yet: the changes ``values[k] - old[k]`` rounded
    to half floats at the row's scale, which goes to ``scale``; ``values`` set to
    ``old`` plus them. (``old`` may be ``changes``: each is read before it is written.)"""
    cdef Py_ssize_t k
    cdef double largest = 0.0, down, up, change
    for k in range(n):
        largest = max(largest, fabs(values[k] - old[k]))
    scale[0] = half_scale(largest)
    down, up = power_of_two(-scale[0]), power_of_two(scale[0])
    for k in range(n):
        change = to_half((values[k] - old[k]) * down) * up
        values[k] = old[k] + change
        changes[k] = change


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
    int float_bytes=8,
    double base_clock=0.0,
    double state_scale=1.0,
    const int[::1] counts=None,
    double run_samples=1.0,
    double shared_spread=0.0,
):
    """What rows ``rows`` of the table changed since their copies ``old_*``:
    ``(change, state_change, aux_change, clocks, scales)``. With ``clocked``, ``clocks``
    are the rows' penalty clocks now and a penalised row's change is from its old value
    decayed up to its clock; ``aux_change`` leaves the clock column out.

    ``float_bytes`` (8, 4 or 2): the precision the changes travel in. Below 8, the
    changes are rounded to it, every clock's offset from ``base_clock`` to single
    precision, and the table's rows are set to their old values plus the rounded
    changes: the table stays equal to what the store rebuilds from them, exactly. At 2,
    each row's changes in a group of columns (params, state, aux) are first scaled by
    the power of two ``2**-scale`` that fits the largest to half floats' range:
    ``scales`` (int8, a row's three; None above 2 bytes).

    ``state_scale``: the table's optimizer state gained each squared gradient that many
    times (``OptimizerConfig.accumulator_scale``): its change is divided by it first, in
    the table too.

    ``counts`` (with ``shared_spread`` > 0): how many of the run's ``run_samples``
    samples touched each row of the table; a row's change of params is multiplied by
    ``1 / (1 + shared_spread * share)``, ``share`` the samples that touched it over all
    (at most 1), in the table too."""
    cdef Py_ssize_t n = rows.shape[0], n_cols = params.shape[1]
    cdef Py_ssize_t n_state = old_state.shape[1] if old_state.shape[0] else 0
    cdef Py_ssize_t first_aux = 1 if clocked else 0
    cdef Py_ssize_t n_aux = (old_aux.shape[1] if old_aux.shape[0] else 0) - first_aux
    cdef bint half = float_bytes == 2, single = float_bytes < 8
    change_array = np.empty((n, n_cols))
    state_array = np.empty((n, n_state))
    aux_array = np.empty((n, max(n_aux, 0)))
    clocks_array = np.empty(n if clocked else 0)
    scales_array = np.zeros((n if half else 0, 3), dtype=np.int8)
    cdef double[:, ::1] change = change_array
    cdef double[:, ::1] state_change = state_array
    cdef double[:, ::1] aux_change = aux_array
    cdef double[::1] clocks = clocks_array
    cdef signed char[:, ::1] scales = scales_array
    cdef Py_ssize_t i, k
    cdef long long row
    cdef double old, weight
    if shared_spread > 0.0 and (counts is None or counts.shape[0] < params.shape[0]):
        raise ValueError("shared_spread needs a count for every row of the table")
    if half and not (
        rows_contiguous(params) and rows_contiguous(state) and rows_contiguous(aux)
        and rows_contiguous(old_params) and rows_contiguous(old_state)
        and rows_contiguous(old_aux)
    ):  # (a row's values are read through a pointer)
        raise ValueError("half-precision entries need rows of contiguous values")
    with nogil:
        for i in range(n):
            if i + ROWS_AHEAD < n:
                prefetch(&params[rows[i + ROWS_AHEAD], 0])
            row = rows[i]
            if state_scale != 1.0:
                for k in range(n_state):
                    state[row, k] = old_state[i, k] + (state[row, k] - old_state[i, k]) / state_scale
            if clocked and row < penalised_rows:
                clocks[i] = base_clock + to_single(aux[row, 0] - base_clock, single)
                aux[row, 0] = clocks[i]
            elif clocked:  # (a clock no penalty reads: the store leaves it as it is)
                clocks[i] = aux[row, 0]
            weight = 1.0
            if shared_spread > 0.0:
                weight = 1.0 / (1.0 + shared_spread * min(1.0, counts[row] / run_samples))
            for k in range(n_cols):
                old = old_params[i, k]
                if clocked and row < penalised_rows:
                    old = old * decay(
                        adagrad, l2, epsilon, old_state[i, k] if adagrad else 0.0,
                        old_aux[i, 0], clocks[i],
                    )
                if weight != 1.0:
                    params[row, k] = old + weight * (params[row, k] - old)
                if half:  # (the old value, decayed, until the row's scale is known)
                    change[i, k] = old
                    continue
                change[i, k] = to_single(params[row, k] - old, single)
                if single:
                    params[row, k] = old + change[i, k]
            if half:  # (the rows' values are in cache: rounded as they are read)
                round_row_to_half(&params[row, 0], &change[i, 0], &change[i, 0], n_cols, &scales[i, 0])
                if n_state:
                    round_row_to_half(
                        &state[row, 0], &old_state[i, 0], &state_change[i, 0], n_state,
                        &scales[i, 1],
                    )
                if n_aux > 0:
                    round_row_to_half(
                        &aux[row, first_aux], &old_aux[i, first_aux], &aux_change[i, 0], n_aux,
                        &scales[i, 2],
                    )
                continue
            for k in range(n_state):
                state_change[i, k] = to_single(state[row, k] - old_state[i, k], single)
                if single:
                    state[row, k] = old_state[i, k] + state_change[i, k]
            for k in range(n_aux):
                old = old_aux[i, first_aux + k]
                aux_change[i, k] = to_single(aux[row, first_aux + k] - old, single)
                if single:
                    aux[row, first_aux + k] = old + aux_change[i, k]
    return (
        change_array,
        state_array,
        aux_array,
        clocks_array if clocked else None,
        scales_array if half else None,
    )


def half_bits(const double[:, ::1] values, const signed char[::1] scales):
    """The bits of the half floats of each row of ``values`` times ``2**-scales[row]``,
    each exactly a half float (``entry_changes`` rounded them): numpy's own conversion
    takes six times as long."""
    bits_array = np.empty(values.shape[0] * values.shape[1], dtype=np.uint16)
    cdef unsigned short[::1] bits = bits_array
    cdef Py_ssize_t i, k, width = values.shape[1]
    cdef double value, down
    cdef uint64_t double_bits
    cdef unsigned short sign
    cdef int exponent
    with nogil:
        for i in range(values.shape[0]):
            down = power_of_two(-scales[i])
            for k in range(width):
                value = values[i, k] * down
                memcpy(&double_bits, &value, 8)
                sign = <unsigned short> ((double_bits >> 48) & 0x8000)
                exponent = <int> ((double_bits >> 52) & 0x7FF) - 1023
                if exponent == 1024:  # inf, or nan
                    bits[i * width + k] = sign | (0x7C00 if value == value else 0x7E00)
                elif exponent >= -14:
                    bits[i * width + k] = sign | <unsigned short> (
                        ((exponent + 15) << 10) | ((double_bits >> 42) & 0x3FF)
                    )
                else:  # a subnormal half float (or zero): a multiple of 2**-24
                    bits[i * width + k] = sign | <unsigned short> (fabs(value) * 16777216.0)
    return bits_array


cdef inline double from_half(unsigned short half, signed char scale) noexcept nogil:
    """The value of the half float ``half`` times ``2**scale``."""
    cdef int exponent = (half >> 10) & 0x1F
    cdef uint64_t double_bits
    cdef double value
    if exponent == 0:  # subnormal, or zero
        value = (half & 0x3FF) * 5.9604644775390625e-08  # (2**-24)
    elif exponent == 31:
        value = INFINITY if (half & 0x3FF) == 0 else NAN
    else:  # (a double's bits: the exponent rebiased, the fraction's 10 bits on top)
        double_bits = (<uint64_t> (exponent - 15 + 1023) << 52) | (<uint64_t> (half & 0x3FF) << 42)
        memcpy(&value, &double_bits, 8)
    # the sign as a bit (a branch on it would be mispredicted half the time)
    memcpy(&double_bits, &value, 8)
    double_bits |= <uint64_t> (half & 0x8000) << 48
    memcpy(&value, &double_bits, 8)
    return value * power_of_two(scale)


def from_half_bits(const unsigned short[::1] bits, const signed char[::1] scales):
    """The values the half floats of ``bits`` hold, as float64 rows of ``bits.size /
    scales.size``, each row times ``2**scales[row]``."""
    cdef Py_ssize_t n = scales.shape[0], width = bits.shape[0] // n if n else 0
    values_array = np.empty((n, width))
    cdef double[:, ::1] values = values_array
    cdef Py_ssize_t i, k
    with nogil:
        for i in range(n):
            for k in range(width):
                values[i, k] = from_half(bits[i * width + k], scales[i])
    return values_array


def take_rows(const double[:, ::1] block, const long long[::1] rows, taken=None):
    """``block[rows]``, prefetched a few rows ahead (``np.take`` waits on each row); into
    ``taken`` when given (a C-contiguous array of those rows' shape)."""
    if taken is None:
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


def touch(
    const int[::1] ids,
    const long long[::1] every_sample,
    long long n_samples,
    int[::1] counts,
    unsigned long long[::1] fresh,
):
    """Count the samples of a piece touching each row in ``counts``: one for each value
    of ``ids`` (a sample's touch of a row), ``n_samples`` for each row of
    ``every_sample``. Returns the rows counted for the first time (at zero before), in
    increasing order: a bit a row in ``fresh`` (``bitmap_words(n)`` words, all zero)
    marks them, and is left all zero again. In order, the rows of a replica are then
    read and written in the direction the hardware prefetches, not at random. One pass
    finds a run's new rows and counts its samples a row (``runtime.trainers``)."""
    cdef Py_ssize_t i, word, n = 0
    cdef long long row
    cdef int count
    cdef unsigned long long bits
    with nogil:
        # (no branch on a row's first touch: a hashed piece's are too many to predict)
        for i in range(ids.shape[0]):
            row = ids[i]
            count = counts[row]
            fresh[row >> 6] |= (<unsigned long long> (count == 0)) << (row & 63)
            counts[row] = count + 1
        for i in range(every_sample.shape[0]):
            row = every_sample[i]
            fresh[row >> 6] |= (<unsigned long long> (counts[row] == 0)) << (row & 63)
            counts[row] += n_samples
        for word in range(fresh.shape[0]):
            n += __builtin_popcountll(fresh[word])
    out = np.empty(n, dtype=np.int64)
    cdef long long[::1] found = out
    n = 0
    with nogil:
        for word in range(fresh.shape[0]):
            bits = fresh[word]
            if bits:
                fresh[word] = 0
                while bits:
                    found[n] = word * 64 + __builtin_ctzll(bits)
                    n += 1
                    bits &= bits - 1
    return out


def bitmap_words(Py_ssize_t n):
    """Words of the bitmap ``touch`` needs for ids below ``n``."""
    return (n + 63) // 64


def varint_steps(const long long[::1] rows):
    """Row ids as the zigzag varints (LEB128) of their differences (``bytes``): an entry's
    rows come in increasing runs a few apart, a byte each rather than an int32's four."""
    cdef Py_ssize_t i, n = rows.shape[0], size = 0
    cdef long long previous = 0, step
    cdef uint64_t zigzag
    out = np.empty(10 * n, dtype=np.uint8)  # (at most 10 bytes a 64-bit value)
    cdef unsigned char[::1] bytes_out = out
    with nogil:
        for i in range(n):
            step = rows[i] - previous
            previous = rows[i]
            zigzag = (<uint64_t> step << 1) ^ <uint64_t> (step >> 63)
            while zigzag >= 0x80:
                bytes_out[size] = <unsigned char> ((zigzag & 0x7F) | 0x80)
                zigzag >>= 7
                size += 1
            bytes_out[size] = <unsigned char> zigzag
            size += 1
    return out[:size].tobytes()


def from_varint_steps(const unsigned char[::1] encoded, Py_ssize_t n):
    """The ``n`` row ids (int64) of ``varint_steps``' bytes."""
    rows = np.empty(n, dtype=np.int64)
    cdef long long[::1] out = rows
    cdef Py_ssize_t i, at = 0, size = encoded.shape[0]
    cdef long long previous = 0
    cdef uint64_t zigzag
    cdef int shift
    cdef bint short = False
    with nogil:
        for i in range(n):
            zigzag, shift = 0, 0
            while True:
                if at >= size or shift > 63:
                    short = True
                    break
                zigzag |= <uint64_t> (encoded[at] & 0x7F) << shift
                at += 1
                if encoded[at - 1] < 0x80:
                    break
                shift += 7
            if short:
                break
            previous += <long long> ((zigzag >> 1) ^ (0 - (zigzag & 1)))
            out[i] = previous
    if short:
        raise ValueError(f"an entry's row ids end before its {n} rows")
    return rows


# the distinct clocks an entry's dictionary holds at most (its codes are bytes)
cdef int MAX_CLOCK_CODES = 256


def clock_codes(const double[::1] clocks):
    """An entry's clocks as a dictionary: ``(the distinct clocks in order of first
    appearance, float64; each clock's code among them, uint8)``, exact; None when there
    are more than 256. A run's rows reach only the clocks of its minibatches (a few
    dozen), so a byte a row carries what took four, or eight."""
    cdef Py_ssize_t i, n = clocks.shape[0]
    cdef int n_values = 0, slot
    cdef uint64_t bits
    # open addressing over the clocks' bits: 1024 slots for at most 256 keys
    cdef uint64_t slot_bits[1024]
    cdef int slot_code[1024]
    cdef double values[256]
    cdef bint too_many = False
    codes = np.empty(n, dtype=np.uint8)
    cdef unsigned char[::1] out = codes
    with nogil:
        for slot in range(1024):
            slot_code[slot] = -1
        for i in range(n):
            memcpy(&bits, &clocks[i], 8)
            slot = <int> ((bits * 0x9E3779B97F4A7C15ULL) >> 54)
            while slot_code[slot] != -1 and slot_bits[slot] != bits:
                slot = (slot + 1) & 1023
            if slot_code[slot] == -1:
                if n_values == MAX_CLOCK_CODES:
                    too_many = True
                    break
                slot_bits[slot] = bits
                slot_code[slot] = n_values
                values[n_values] = clocks[i]
                n_values += 1
            out[i] = <unsigned char> slot_code[slot]
    if too_many:
        return None
    return np.array(<double[:n_values]> values if n_values else [], dtype=np.float64), codes
