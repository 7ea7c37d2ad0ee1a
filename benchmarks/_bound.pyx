# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Lower bounds for a worker's kernel: loops that do only part of a training step's work
over the same data and rows (benchmarks/bench_kernel_bound.py)."""

from libc.math cimport sqrt


def predict_only(double[::1] rows, int width, const double[::1] data,
                 const int[::1] indices, const long long[::1] indptr):
    """Each sample's prediction from rows of ``width`` doubles: reads only."""
    cdef Py_ssize_t i, j
    cdef double p, total = 0.0
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j] * width]
            total += p
    return total


def sgd_per_sample(double[::1] rows, const double[::1] data,
                   const int[::1] indices, const long long[::1] indptr):
    """Plain SGD, one sample a step, on one double a row (scikit-learn's loop without
    its loss, schedule and weight scale)."""
    cdef Py_ssize_t i, j
    cdef double p, g
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j]]
            g = 1e-6 * (p - 0.5)
            for j in range(indptr[i], indptr[i + 1]):
                rows[indices[j]] -= g * data[j]


cdef packed struct StoreRow:  # 24 bytes, as the store keeps a row
    double weight
    double accumulator
    double clock


cdef packed struct PaddedRow:  # the same, padded to 32 bytes
    double weight
    double accumulator
    double clock
    double padding


cdef packed struct NarrowRow:  # 16 bytes: a float64 weight, float32 state
    double weight
    float accumulator
    float clock


ctypedef fused Row:
    StoreRow
    PaddedRow
    NarrowRow


def adagrad_per_sample(Row[::1] rows, const double[::1] data,
                       const int[::1] indices, const long long[::1] indptr):
    """AdaGrad, one sample a step, on rows of (weight, accumulator, penalty clock): as
    the store keeps them, padded to 32 bytes, or with the accumulator and clock in
    float32 (what a float32 optimizer state would save in memory traffic). No
    minibatch, no penalty, no loss."""
    cdef Py_ssize_t i, j
    cdef double p, g, gj
    cdef Row *row
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j]].weight
            g = 1e-3 * (p - 0.5)
            for j in range(indptr[i], indptr[i + 1]):
                row = &rows[indices[j]]
                gj = g * data[j]
                row.accumulator = row.accumulator + gj * gj
                row.weight -= 0.01 * gj / (sqrt(row.accumulator) + 1e-8)
                row.clock = row.clock + 1.0
