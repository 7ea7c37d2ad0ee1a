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


def adagrad_per_sample(double[::1] rows, const double[::1] data,
                       const int[::1] indices, const long long[::1] indptr):
    """AdaGrad, one sample a step, on rows of (weight, accumulator, penalty clock) as
    the store keeps them: no minibatch, no penalty, no loss."""
    cdef Py_ssize_t i, j
    cdef double p, g, gj
    cdef double *row
    with nogil:
        for i in range(indptr.shape[0] - 1):
            p = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                p += data[j] * rows[indices[j] * 3]
            g = 1e-3 * (p - 0.5)
            for j in range(indptr[i], indptr[i + 1]):
                row = &rows[indices[j] * 3]
                gj = g * data[j]
                row[1] += gj * gj
                row[0] -= 0.01 * gj / (sqrt(row[1]) + 1e-8)
                row[2] += 1.0
