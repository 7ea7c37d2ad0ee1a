# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""A remote store's log entry added to a replica, compiled: one pass over the entry's
rows where numpy took a dozen (``store/delta_log.py`` states the maths), and the
distinct rows a run of minibatches touches, in order, where ``IdIndexer`` takes five passes."""

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


def entry_changes(
    bint adagrad,
    double l2,
    double epsilon,
    long long penalised_rows,
    bint clocked,
    const double[:, :] params,
    const double[:, :] state,
    const double[:, :] aux,
    const long long[::1] rows,
    const double[:, :] old_params,
    const double[:, :] old_state,
    const double[:, :] old_aux,
):
    """What rows ``rows`` of the table changed since their copies ``old_*``:
    ``(change, state_change, aux_change, clocks)``. With ``clocked``, ``clocks`` are the
    rows' penalty clocks now and a penalised row's change is from its old value decayed
    up to its clock; ``aux_change`` leaves the clock column out."""
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
            row = rows[i]
            if clocked:
                clocks[i] = aux[row, 0]
            for k in range(n_cols):
                old = old_params[i, k]
                if clocked and row < penalised_rows:
                    old = old * decay(
                        adagrad, l2, epsilon, old_state[i, k] if adagrad else 0.0,
                        old_aux[i, 0], clocks[i],
                    )
                change[i, k] = params[row, k] - old
            for k in range(n_state):
                state_change[i, k] = state[row, k] - old_state[i, k]
            for k in range(n_aux):
                aux_change[i, k] = aux[row, first_aux + k] - old_aux[i, first_aux + k]
    return change_array, state_array, aux_array, clocks_array if clocked else None


def distinct(const int[::1] ids, unsigned char[::1] seen):
    """The distinct values of ``ids``, in increasing order: ``seen`` (one byte per
    possible id, all zero) marks the ones present, and is left all zero again. In order,
    the rows of a replica are then read and written in the direction the hardware
    prefetches, not at random."""
    cdef Py_ssize_t i, n = 0
    with nogil:
        for i in range(ids.shape[0]):
            seen[ids[i]] = 1
    out = np.flatnonzero(seen)
    cdef const long long[::1] found = out
    with nogil:
        for i in range(found.shape[0]):
            seen[found[i]] = 0
    return out
