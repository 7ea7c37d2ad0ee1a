# cython: boundscheck=False, wraparound=False, cdivision=True
"""Feature hashing of raw table columns, compiled: the workers' reader runs it per shard.

The hashing is scikit-learn's ``FeatureHasher(input_type="dict")`` on one dict a row,
``{column: value}``: a number hashes its column's name and keeps its value, a string
hashes ``"column=value"`` with value 1; the signed 32-bit MurmurHash3 (seed 0) picks the
column ``abs(h) % n_features`` and, with ``alternate_sign``, the sign of ``h``. Missing
cells (NaN numbers, empty strings) and zeros are left out, and a row's entries that land
in one column are summed, as ``FeatureHasher`` does.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy


cdef extern from "<string.h>" nogil:
    size_t strnlen(const char* s, size_t maxlen)


cdef inline uint32_t _rotl32(uint32_t x, int r) noexcept nogil:
    return (x << r) | (x >> (32 - r))


cdef int32_t _murmurhash3_32(const uint8_t* data, Py_ssize_t length) noexcept nogil:
    """MurmurHash3_x86_32 (Austin Appleby's, public domain) with seed 0, signed."""
    cdef uint32_t h1 = 0, k1
    cdef uint32_t c1 = 0xcc9e2d51U, c2 = 0x1b873593U
    cdef Py_ssize_t n_blocks = length // 4, i
    for i in range(n_blocks):
        k1 = (
            <uint32_t>data[4 * i]
            | (<uint32_t>data[4 * i + 1] << 8)
            | (<uint32_t>data[4 * i + 2] << 16)
            | (<uint32_t>data[4 * i + 3] << 24)
        )
        k1 *= c1
        k1 = _rotl32(k1, 15)
        k1 *= c2
        h1 ^= k1
        h1 = _rotl32(h1, 13)
        h1 = h1 * 5 + 0xe6546b64U
    cdef const uint8_t* tail = data + 4 * n_blocks
    cdef int rest = length & 3
    k1 = 0
    if rest == 3:
        k1 ^= <uint32_t>tail[2] << 16
    if rest >= 2:
        k1 ^= <uint32_t>tail[1] << 8
    if rest >= 1:
        k1 ^= <uint32_t>tail[0]
        k1 *= c1
        k1 = _rotl32(k1, 15)
        k1 *= c2
        h1 ^= k1
    h1 ^= <uint32_t>length
    h1 ^= h1 >> 16
    h1 *= 0x85ebca6bU
    h1 ^= h1 >> 13
    h1 *= 0xc2b2ae35U
    h1 ^= h1 >> 16
    return <int32_t>h1


def murmurhash3_32(bytes key):
    """The signed 32-bit MurmurHash3 of ``key`` (seed 0), as scikit-learn's."""
    return _murmurhash3_32(<const uint8_t*>key, len(key))


cdef inline int32_t _column(int32_t h, int64_t n_features, int64_t mask) noexcept nogil:
    """``abs(h) % n_features``; ``mask`` is ``n_features - 1`` for a power of two (the
    usual case, where a mask replaces the division), else 0."""
    if h == -2147483648:  # abs() is undefined there; scikit-learn's definition
        return <int32_t>((2147483647 - (n_features - 1)) % n_features)
    cdef int64_t magnitude = h if h >= 0 else -h
    if mask:
        return <int32_t>(magnitude & mask)
    return <int32_t>(magnitude % n_features)


def hash_table(
    const float[:, ::1] numeric,
    const int32_t[:] numeric_hashes,
    const uint8_t[:, :, ::1] categorical,
    list prefixes,
    int64_t n_features,
    bint alternate_sign,
):
    """CSR arrays ``(data, indices, indptr)`` of the hashed rows of a table.

    ``numeric`` holds the numeric columns (NaN where missing), ``numeric_hashes`` the
    hash of each one's name; ``categorical`` the strings as bytes, NUL-padded to a
    common width (a numpy 'S' array viewed as bytes), and ``prefixes`` each
    categorical column's ``b"name="``.
    """
    cdef Py_ssize_t n_rows = max(numeric.shape[0], categorical.shape[0])
    cdef Py_ssize_t n_numeric = numeric.shape[1], n_categorical = categorical.shape[1]
    cdef Py_ssize_t width = categorical.shape[2]
    cdef Py_ssize_t per_row = n_numeric + n_categorical
    data_array = np.empty(n_rows * per_row, dtype=np.float64)
    indices_array = np.empty(n_rows * per_row, dtype=np.int32)
    indptr_array = np.zeros(n_rows + 1, dtype=np.int64)
    cdef double* data = <double*>cnp_data(data_array)
    cdef int32_t* indices = <int32_t*>cnp_data(indices_array)
    cdef int64_t[:] indptr = indptr_array
    # every prefix in one buffer, so that the loop runs without the GIL
    prefix_array = np.frombuffer(b"".join(prefixes) or b"\0", dtype=np.uint8)
    cdef const uint8_t[:] prefix_buffer = prefix_array
    cdef Py_ssize_t[:] prefix_start = np.concatenate(
        [[0], np.cumsum([len(p) for p in prefixes], dtype=np.intp)]
    ).astype(np.intp)
    cdef Py_ssize_t longest = max([len(p) for p in prefixes], default=0)
    key_array = np.empty(longest + width + 1, dtype=np.uint8)
    cdef uint8_t[:] key = key_array
    cdef Py_ssize_t row, column, length, prefix_length, k
    cdef int32_t h
    cdef double value
    cdef float cell
    cdef int64_t size = 0, start
    cdef int64_t mask = n_features - 1 if n_features & (n_features - 1) == 0 else 0
    cdef const uint8_t* cell_bytes
    with nogil:
        for row in range(n_rows):
            start = size
            for column in range(n_numeric):
                cell = numeric[row, column]
                if cell != cell or cell == 0:  # NaN: missing
                    continue
                h = numeric_hashes[column]
                value = cell
                if alternate_sign and h < 0:
                    value = -value
                size = _add(data, indices, start, size, _column(h, n_features, mask), value)
            for column in range(n_categorical):
                cell_bytes = &categorical[row, column, 0]
                length = strnlen(<const char*>cell_bytes, width)
                if length == 0:  # empty: missing
                    continue
                prefix_length = prefix_start[column + 1] - prefix_start[column]
                memcpy(&key[0], &prefix_buffer[prefix_start[column]], prefix_length)
                memcpy(&key[prefix_length], cell_bytes, length)
                h = _murmurhash3_32(&key[0], prefix_length + length)
                value = -1.0 if alternate_sign and h < 0 else 1.0
                size = _add(data, indices, start, size, _column(h, n_features, mask), value)
            indptr[row + 1] = size
    return data_array[:size], indices_array[:size], indptr_array


cdef void* cnp_data(array):
    """The address of a contiguous numpy array's first element."""
    return <void*><size_t>array.ctypes.data


cdef inline int64_t _add(
    double* data, int32_t* indices, int64_t start, int64_t size, int32_t index, double value
) noexcept nogil:
    """Add ``value`` at column ``index`` to the row begun at ``start``: summed into an
    entry of the same column if the row has one (rows are short: a few dozen entries),
    else appended. Columns stay in the order they come."""
    cdef int64_t position
    for position in range(start, size):
        if indices[position] == index:
            data[position] += value
            return size
    indices[size] = index
    data[size] = value
    return size + 1
