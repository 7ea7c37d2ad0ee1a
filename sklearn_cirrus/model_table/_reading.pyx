# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""A store's read of a key's rows: each with the penalty it still owes (``_owed.pxd``)."""

from libc.stdlib cimport free, malloc

import numpy as np

from ._owed cimport Rule, catch_up_row, make_rule


def up_to_date_copy(config, const double[:, :] params, const double[:, :] state,
                     const double[:, :] aux, const double[::1] meta, rows=None,
                     bint pulled=False):
    """A new array of the model's rows ``rows`` (every row if None), each with the
    penalty it still owes applied, the table itself unchanged: one pass over it, which a
    read of the whole model (every epoch's checkpoint) needs to be cheap. The table is
    the store's own, or with ``pulled`` a copy of just those rows. A row of zeros stays
    zeros (decay and L1 truncation of zero), so its clocks are not read."""
    cdef Rule rule = make_rule(config)
    cdef Py_ssize_t n_outputs = params.shape[1]
    cdef Py_ssize_t aux_width = aux.shape[1]
    cdef long long n_penalised = config.penalised_rows
    cdef const long long[::1] picked = None
    cdef Py_ssize_t n, i, k
    cdef long long row, at
    cdef bint penalised = aux.shape[0] > 0 and (rule.l1 > 0.0 or rule.l2 > 0.0)
    cdef bint nonzero
    if rows is None:
        n = params.shape[0]
    else:
        picked = np.ascontiguousarray(rows, dtype=np.int64)
        n = picked.shape[0]
    out_array = np.empty((n, n_outputs))
    cdef double[:, ::1] out = out_array
    cdef double *scratch = <double *> malloc((aux_width + 1) * sizeof(double))
    if scratch == NULL:
        raise MemoryError("no memory to read the model")
    try:
        with nogil:
            for i in range(n):
                row = i if picked is None else picked[i]
                at = i if pulled else row
                nonzero = False
                for k in range(n_outputs):
                    out[i, k] = params[at, k]
                    nonzero = nonzero or out[i, k] != 0.0
                if not (penalised and nonzero and row < n_penalised):
                    continue
                for k in range(aux_width):
                    scratch[k] = aux[at, k]
                catch_up_row(
                    &rule, &meta[0], &out[i, 0],
                    <double *> &state[at, 0] if state.shape[0] > 0 else NULL,
                    scratch, <int> n_outputs,
                )
    finally:
        free(scratch)
    return out_array
