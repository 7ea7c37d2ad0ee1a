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


def adagrad_per_sample(double[::1] rows, int width, const double[::1] data,
                       const int[::1] indices, const long long[::1] indptr):
    """AdaGrad, one sample a step, on rows of (weight, accumulator, penalty clock) as
    the store keeps them (``width`` 3; 4 pads each row to 32 bytes): no minibatch, no
    penalty, no loss."""
    cdef Py_ssize_t i, j
    cdef double p, g, gj
    cdef double *row
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j] * width]
            g = 1e-3 * (p - 0.5)
            for j in range(indptr[i], indptr[i + 1]):
                row = &rows[indices[j] * width]
                gj = g * data[j]
                row[1] += gj * gj
                row[0] -= 0.01 * gj / (sqrt(row[1]) + 1e-8)
                row[2] += 1.0


cdef packed struct NarrowRow:  # 16 bytes: a float64 weight, float32 state
    double weight
    float accumulator
    float clock


def adagrad_per_sample_narrow(NarrowRow[::1] rows, const double[::1] data,
                              const int[::1] indices, const long long[::1] indptr):
    """``adagrad_per_sample`` with the accumulator and clock in float32: 16-byte rows,
    what a float32 optimizer state (``state_dtype``) would save in memory traffic."""
    cdef Py_ssize_t i, j
    cdef double p, g, gj
    cdef NarrowRow *row
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j]].weight
            g = 1e-3 * (p - 0.5)
            for j in range(indptr[i], indptr[i + 1]):
                row = &rows[indices[j]]
                gj = g * data[j]
                row.accumulator = row.accumulator + <float>(gj * gj)
                row.weight -= 0.01 * gj / (sqrt(row.accumulator) + 1e-8)
                row.clock = row.clock + 1.0
