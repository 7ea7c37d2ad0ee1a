# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""A remote store's log entry added to a replica, compiled: one pass over the entry's
rows where numpy took a dozen (``store/delta_log.py`` states the maths), and the
distinct rows a run of minibatches touches, in one pass where ``IdIndexer`` takes five."""

from libc.math cimport exp, sqrt

import numpy as np


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


def distinct(const int[::1] ids, unsigned char[::1] seen):
    """The distinct values of ``ids`` in order of first appearance, in one pass:
    ``seen`` (one byte per possible id, all zero) marks the ones found, and is left all
    zero again."""
    out = np.empty(ids.shape[0], dtype=np.int64)
    cdef long long[::1] found = out
    cdef Py_ssize_t i, n = 0
    cdef int id_
    with nogil:
        for i in range(ids.shape[0]):
            id_ = ids[i]
            if not seen[id_]:
                seen[id_] = 1
                found[n] = id_
                n += 1
        for i in range(n):
            seen[found[i]] = 0
    return out[:n]
