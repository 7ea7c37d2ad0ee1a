# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled minibatch SGD for linear models and matrix factorization: gather, loss,
gradient, optimizer step, scatter: the only place the engine's maths lives.

One call trains on a whole shard, minibatch after minibatch, updating the store's
arrays in place and without the GIL. Against a local store those arrays are the store's
own (shared memory or this process's memory) and several workers update them at once,
lock-free (Hogwild, Recht et al. 2011); against a remote store they are a worker's
pulled copy of the rows a minibatch touches, and the worker pushes the difference.

The table of one model (see :class:`~sklearn_cirrus.model_table.ModelTable`):

- ``params[r, k]``: weight of feature ``r`` for output ``k``; the row ``intercept_row``
  holds the intercepts (and is never penalised);
- ``state[r, k]``: the optimizer's per-coordinate state (adagrad's sum of squared
  gradients, the momentum methods' velocity); no rows for plain SGD;
- ``aux[r, 0]``: the row's penalty clock, the value of the global clock when the row
  was last brought up to date; with L1, ``aux[r, 1 + k]``: the L1 penalty already
  applied to the coordinate and, for adagrad, ``aux[r, 1 + n_outputs + k]``: the L1
  penalty it could have received so far (cumulative-penalty L1);
- ``meta``: samples seen (the ``t`` of the schedules), the step-size scale, and the two
  global penalty clocks: the sum of log L2 decay factors and the sum of penalty steps.

Regularisation is exact and lazy ("just in time", Lipton & Elkan 2015): a row a
minibatch does not touch owes the penalty of that step; when it is next touched (or
read), the decay of every step it missed is applied in closed form from the clocks, so
the model minimises ``mean loss + alpha * R(w)`` over all features, as scikit-learn's
``SGDClassifier`` does, whatever the feature frequencies.

- ``sgd``: each step multiplies every weight by ``d = 1 - eta * l2`` and subtracts
  ``eta`` times the loss gradient (the non-lazy update of the whole objective). The log
  of the product of the ``d`` of missed steps is a difference of clocks, so the lazy
  model equals the eager one for every schedule. L1 is the cumulative penalty of
  Tsuruoka et al. (2009), as in scikit-learn, which gives exact zeros.
- ``momentum`` / ``nesterov``: the velocity carries the loss gradient only; the penalty
  is applied outside it with the step ``eta / (1 - momentum)``, the step the loss
  gradient takes once the velocity has settled, so the fixed point is again the
  objective's minimiser.
- ``adagrad``: the composite-objective form of Duchi et al. (2011): the accumulator
  sees loss gradients only and the penalty is a proximal step with the coordinate's own
  step size ``step = eta / (sqrt(G) + eps)``: a division by ``1 + step * l2`` for L2,
  and for L1 the cumulative penalty with each coordinate's own total ``sum(step) * l1``
  (a plain soft-threshold per step leaves weights jittering around zero under noisy
  minibatch gradients; the cumulative form lets them settle at exactly zero). A row's
  accumulator does not change while it is untouched, so its missed steps owe an L2
  decay of ``exp(-l2 * sum(eta) / h)`` (the limit of the per-step prox for small
  steps) and an L1 penalty of ``l1 * sum(eta) / h``.
"""

from libc.math cimport exp, expm1, fabs, log, log1p, pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

from ..model_table._owed cimport (
    ADAGRAD, ETA_SCALE_SLOT, INVSCALING, LOG_DECAY_SLOT, MOMENTUM, NESTEROV, OPTIMAL,
    PENALTY_STEPS_SLOT, SGD, T_SLOT, Rule, catch_up_row, cumulative_l1, exp_minus, make_rule,
)

# loss identifiers, in the order of LOSSES
cdef enum:
    HINGE, PERCEPTRON, SQUARED_HINGE, LOG_LOSS, MODIFIED_HUBER, SQUARED_ERROR, HUBER, \
    EPSILON_INSENSITIVE, SQUARED_EPSILON_INSENSITIVE

LOSSES = (
    "hinge", "perceptron", "squared_hinge", "log_loss", "modified_huber", "squared_error",
    "huber", "epsilon_insensitive", "squared_epsilon_insensitive",
)

# scikit-learn clips dloss to this magnitude to avoid overflow (``MAX_DLOSS``)
cdef double MAX_DLOSS = 1e12
# the smallest L2 decay factor of one step: keeps the log clock finite where
# ``1 - eta * l2`` would reach 0 (scikit-learn clips it at 0)
cdef double MIN_DECAY = 1e-300


cdef struct Model:
    int loss
    double epsilon
    int n_outputs
    bint classification
    bint fit_intercept
    int intercept_row
    double *positive_weight
    double *negative_weight
    # averaged SGD: a step is averaged once this many samples are seen (with it)
    double average_start


cdef inline double step_size(Rule *rule, double *meta) noexcept nogil:
    cdef double t = meta[T_SLOT]
    cdef double eta
    if rule.schedule == OPTIMAL:
        eta = 1.0 / (rule.alpha * (rule.optimal_init + t))
    elif rule.schedule == INVSCALING:
        eta = rule.eta0 / pow(t + 1.0, rule.power_t)
    else:
        eta = rule.eta0
    return eta * meta[ETA_SCALE_SLOT] * rule.step_scale


cdef inline int batch_stop(int start, int batch_size, int n_samples) noexcept nogil:
    """End of the minibatch that begins at ``start``: ``batch_size`` rows, but a tail of
    less than half a batch joins the last one. A shard whose rows are not a whole number
    of batches (a dataset's, a fold's) would otherwise end on a step of a few rows,
    whose noisy gradient AdaGrad remembers for good in a rare feature's accumulator."""
    cdef int stop = start + batch_size
    if stop >= n_samples or 2 * (n_samples - stop) < batch_size:
        return n_samples
    return stop


cdef extern from *:
    """
    /* ``*address += value`` for a double that other workers add to at the same time
       (threads, or processes sharing the memory): a compare-and-swap loop on its bits,
       so that no worker's addition is lost. */
    static inline void atomic_add(double *address, double value) {
        union { double d; unsigned long long u; } seen, sum;
        seen.u = __atomic_load_n((unsigned long long *) address, __ATOMIC_RELAXED);
        do {
            sum.d = seen.d + value;
        } while (!__atomic_compare_exchange_n((unsigned long long *) address, &seen.u, sum.u,
                                              1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    }
    """
    void atomic_add(double *address, double value) noexcept nogil


cdef struct Step:
    # one minibatch step: its step size, the L2 decay factor of the SGD family, what it
    # adds to the global penalty clocks, and the penalty-steps clock once it is done as
    # far as this worker knows (others may add their steps meanwhile): the L1 total
    double eta
    double decay
    double log_decay
    double penalty_steps
    double penalty_steps_after


cdef inline Step begin_step(Rule *rule, double *meta) noexcept nogil:
    cdef Step step
    cdef double penalty_step
    step.eta = step_size(rule, meta)
    penalty_step = step.eta * rule.penalty_scale
    step.decay = 1.0 - penalty_step * rule.l2
    if step.decay < MIN_DECAY:
        step.decay = MIN_DECAY
    step.log_decay = log(step.decay)
    step.penalty_steps = step.eta if rule.optimizer == ADAGRAD else penalty_step
    step.penalty_steps_after = meta[PENALTY_STEPS_SLOT] + step.penalty_steps
    return step


cdef inline void update_row(
    Rule *rule,
    Step *the_step,
    bint penalised,
    double *w,
    double *state,
    double *aux,
    double *grad,
    int n_outputs,
) noexcept nogil:
    """One optimizer step of a row with its mean loss gradient ``grad``, plus the penalty."""
    cdef int k
    cdef double g, h, step, velocity, previous
    cdef double eta = the_step.eta
    cdef double decay = the_step.decay if penalised else 1.0
    cdef double epsilon = rule.epsilon
    if rule.optimizer == ADAGRAD and not penalised:
        # without branches, for the compiler to vectorise: factorization's long rows
        for k in range(n_outputs):
            state[k] += grad[k] * grad[k] * rule.accumulator_scale
            w[k] -= eta * grad[k] / (sqrt(state[k]) + epsilon)
        return
    for k in range(n_outputs):
        g = grad[k]
        if rule.optimizer == ADAGRAD:
            state[k] += g * g * rule.accumulator_scale
            h = sqrt(state[k]) + epsilon
            if rule.l1 > 0.0:  # penalised: the unpenalised step returned above
                step = eta / h
                w[k] -= step * g
                aux[1 + n_outputs + k] += step * rule.l1
                cumulative_l1(&w[k], &aux[1 + k], aux[1 + n_outputs + k])
                w[k] /= 1.0 + step * rule.l2
            else:  # (w - step * g) / (1 + step * l2), with one division
                w[k] = (w[k] * h - eta * g) / (h + eta * rule.l2)
            continue
        if rule.optimizer == SGD:
            w[k] = w[k] * decay - eta * g
        elif rule.optimizer == MOMENTUM:
            velocity = rule.momentum * state[k] + g
            state[k] = velocity
            w[k] = w[k] * decay - eta * velocity
        else:  # nesterov, in the form of Sutskever et al. (2013)
            previous = state[k]
            velocity = rule.momentum * previous - eta * g
            state[k] = velocity
            w[k] = w[k] * decay - rule.momentum * previous + (1.0 + rule.momentum) * velocity
        if penalised and rule.l1 > 0.0:
            cumulative_l1(&w[k], &aux[1 + k], rule.l1 * the_step.penalty_steps_after)
    if penalised:
        # the row was brought up to date to its clock (the global clock when it was
        # read); this step's own penalty moves it on. Setting it to "the global clock
        # when the step began plus this step" instead would charge it again for the
        # steps other workers finished in between, as if missed: popular rows, touched
        # by nearly every step of every worker, would pay about twice the penalty.
        aux[0] += the_step.penalty_steps if rule.optimizer == ADAGRAD else the_step.log_decay


cdef inline void loss_and_derivative(
    int loss, double p, double y, double epsilon, double *out_loss, double *out_dloss
) noexcept nogil:
    """scikit-learn's ``_sgd_fast`` losses, term for term; log-loss computed stably."""
    cdef double z, r, e, threshold
    if loss == HINGE or loss == PERCEPTRON:
        z = p * y
        threshold = 1.0 if loss == HINGE else 0.0
        if z <= threshold:
            out_loss[0] = threshold - z
            out_dloss[0] = -y
        else:
            out_loss[0] = 0.0
            out_dloss[0] = 0.0
    elif loss == SQUARED_HINGE:
        z = 1.0 - p * y
        if z > 0.0:
            out_loss[0] = z * z
            out_dloss[0] = -2.0 * y * z
        else:
            out_loss[0] = 0.0
            out_dloss[0] = 0.0
    elif loss == LOG_LOSS:
        z = p * y
        if z > 0.0:
            e = exp(-z)
            out_loss[0] = log1p(e)
            out_dloss[0] = -y * e / (1.0 + e)
        else:
            e = exp(z)
            out_loss[0] = log1p(e) - z
            out_dloss[0] = -y / (1.0 + e)
    elif loss == MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            out_loss[0] = 0.0
            out_dloss[0] = 0.0
        elif z >= -1.0:
            out_loss[0] = (1.0 - z) * (1.0 - z)
            out_dloss[0] = -2.0 * (1.0 - z) * y
        else:
            out_loss[0] = -4.0 * z
            out_dloss[0] = -4.0 * y
    elif loss == SQUARED_ERROR:
        r = p - y
        out_loss[0] = 0.5 * r * r
        out_dloss[0] = r
    elif loss == HUBER:
        r = p - y
        if fabs(r) <= epsilon:
            out_loss[0] = 0.5 * r * r
            out_dloss[0] = r
        else:
            out_loss[0] = epsilon * fabs(r) - 0.5 * epsilon * epsilon
            out_dloss[0] = epsilon if r > 0.0 else -epsilon
    elif loss == EPSILON_INSENSITIVE:
        r = p - y
        out_loss[0] = max(fabs(r) - epsilon, 0.0)
        out_dloss[0] = 1.0 if r > epsilon else (-1.0 if r < -epsilon else 0.0)
    else:  # squared_epsilon_insensitive
        r = p - y
        z = max(fabs(r) - epsilon, 0.0)
        out_loss[0] = z * z
        out_dloss[0] = 2.0 * z if r > 0.0 else -2.0 * z


cdef inline double sample_derivatives(
    Model *model, double *prediction, double y, double sample_weight, double scale,
    double *dloss
) noexcept nogil:
    """Per output: ``dloss`` (weighted, clipped, times ``scale``); returns the weighted loss."""
    cdef int k
    cdef double target, weight, loss, d, total = 0.0
    for k in range(model.n_outputs):
        if not model.classification:
            target = y
            weight = sample_weight
        else:
            if model.n_outputs == 1:
                target = 1.0 if y == 1.0 else -1.0
            else:
                target = 1.0 if y == k else -1.0
            weight = sample_weight * (
                model.positive_weight[k] if target > 0 else model.negative_weight[k]
            )
        loss_and_derivative(model.loss, prediction[k], target, model.epsilon, &loss, &d)
        if d > MAX_DLOSS:
            d = MAX_DLOSS
        elif d < -MAX_DLOSS:
            d = -MAX_DLOSS
        total += weight * loss
        dloss[k] = weight * d * scale
    return total


cdef struct Table:
    # a ModelTable's arrays as pointers and row strides (its arrays may interleave)
    double *w
    double *s
    double *a
    Py_ssize_t ws
    Py_ssize_t ss
    Py_ssize_t as_
    double *meta


cdef inline double *state_row(Table *t, int row) noexcept nogil:
    return t.s + row * t.ss if t.s != NULL else NULL


cdef inline double *aux_row(Table *t, int row) noexcept nogil:
    return t.a + row * t.as_ if t.a != NULL else NULL


# Averaged SGD (Polyak & Juditsky 1992; scikit-learn's ``average``). The average table
# holds, per model row, the sum of the row's values over the averaged steps and the
# step ``last`` up to which that sum is complete; its last row holds ``A``, the count of
# averaged steps so far, and ``S``, the count of all steps (averaging, once begun, goes
# on: the last ``A`` steps are the averaged ones). A row a step does not touch only
# decays (its penalty); when next touched or read, the averaged steps among those it
# missed join its sum in closed form, a geometric series whose ratio spreads the row's
# total decay evenly over the missed steps (exact for a constant step size; with L1 or
# a changing step, a close approximation).


cdef inline double missed_steps_share(double n, double m, double decay) noexcept nogil:
    """``sum(decay ** (j / n) for j in n - m + 1..n)``: a value that decayed by ``decay``
    in all over ``n`` steps, in equal factors, summed over the last ``m`` of them."""
    cdef double c
    if m <= 0.0 or decay <= 0.0:
        return 0.0
    if decay >= 1.0:
        return m
    c = -log(decay) / n
    if c * n < 1e-12:
        return m * (1.0 - c * (n - 0.5 * (m - 1.0)))
    # decay ** ((n - m) / n) * sum(d ** j for j in 1..m), d = decay ** (1 / n)
    return exp(-c * (n - m)) * -expm1(-c * m) / expm1(c)


cdef inline void average_missed(
    const double *before, const double *after, double *sums, int n_outputs,
    double averaged, double steps,
) noexcept nogil:
    """Add to a row's sums the averaged steps it missed, during which it went from
    ``before`` to ``after``, and count it up to date (``sums[n_outputs]``: ``last``)."""
    cdef int k
    cdef double n = steps - sums[n_outputs]
    cdef double m = min(n, averaged)
    cdef double decay
    if m > 0.0:
        for k in range(n_outputs):
            if before[k] != 0.0:
                decay = min(max(after[k] / before[k], 0.0), 1.0)
                sums[k] += before[k] * missed_steps_share(n, m, decay)
    sums[n_outputs] = steps


cdef inline void bring_up_to_date(
    Rule *rule, Table *t, Table *avg, int row, int n_outputs, bint penalised, double *scratch
) noexcept nogil:
    """The penalty a row owes and, when averaging, the averaged steps it missed."""
    cdef double *w = t.w + row * t.ws
    cdef int k
    if avg.w != NULL:
        for k in range(n_outputs):
            scratch[k] = w[k]
    if penalised:
        catch_up_row(rule, t.meta, w, state_row(t, row), aux_row(t, row), n_outputs)
    if avg.w != NULL:
        average_missed(scratch, w, avg.w + row * avg.ws, n_outputs, avg.meta[0], avg.meta[1])


cdef inline void average_row(
    Table *avg, const double *w, int row, int n_outputs, bint averaging
) noexcept nogil:
    """After a step that updated the row: its new value joins its sum, when averaging."""
    cdef double *sums
    cdef int k
    if avg.w == NULL:
        return
    sums = avg.w + row * avg.ws
    if averaging:
        for k in range(n_outputs):
            sums[k] += w[k]
    sums[n_outputs] = avg.meta[1] + 1.0


cdef inline bint begin_averaging(
    Rule *rule, Table *t, Table *avg, Model *model, int n_samples, double *scratch
) noexcept nogil:
    """Whether the step about to run is averaged; brings the intercept's sum up to date
    (other workers' steps moved it meanwhile)."""
    if avg.w == NULL:
        return False
    bring_up_to_date(
        rule, t, avg, model.intercept_row, model.n_outputs, False, scratch
    )
    return t.meta[T_SLOT] + n_samples >= model.average_start


cdef inline void end_step(
    Rule *rule, Step *step, Table *t, Model *model, double *intercept_grad, int n_samples,
    Table *avg, bint averaging,
) noexcept nogil:
    """The intercept's step (never penalised), then the step's count and clocks."""
    cdef int row = model.intercept_row
    if model.fit_intercept:
        update_row(
            rule, step, False, t.w + row * t.ws, state_row(t, row), NULL, intercept_grad,
            model.n_outputs,
        )
    average_row(avg, t.w + row * t.ws, row, model.n_outputs, averaging)
    if avg.w != NULL:
        if averaging:
            atomic_add(&avg.meta[0], 1.0)
        atomic_add(&avg.meta[1], 1.0)
    # added, not set: concurrent workers' steps all count (setting the value this step
    # began from plus its own would drop the steps others finished meanwhile, and with
    # them, a share of every row's penalty)
    atomic_add(&t.meta[T_SLOT], n_samples)
    atomic_add(&t.meta[LOG_DECAY_SLOT], step.log_decay)
    atomic_add(&t.meta[PENALTY_STEPS_SLOT], step.penalty_steps)


cdef Py_ssize_t row_stride(double[:, :] array) except -1:
    """Doubles from one row to the next: the arrays of one key may interleave in a table."""
    if array.shape[0] > 0 and array.shape[1] > 1 and array.strides[1] != sizeof(double):
        raise ValueError("model arrays need contiguous rows")
    return array.strides[0] // sizeof(double)


cdef Table make_table(
    double[:, :] params, double[:, :] state, double[:, :] aux, double[::1] meta
) except *:
    cdef Table t
    t.w = &params[0, 0]
    t.s = &state[0, 0] if state.shape[0] > 0 else NULL
    t.a = &aux[0, 0] if aux.shape[0] > 0 else NULL
    t.ws, t.ss, t.as_ = row_stride(params), row_stride(state), row_stride(aux)
    t.meta = &meta[0]
    return t


cdef Table make_average_table(double[:, :] average) except *:
    """The average table of a model, or an empty one (``w`` NULL) when not averaging;
    its ``meta`` points at its last row: ``A`` then ``S``."""
    cdef Table avg
    memset(&avg, 0, sizeof(Table))
    if average.shape[0] > 0:
        avg.w = &average[0, 0]
        avg.ws = row_stride(average)
        avg.meta = &average[average.shape[0] - 1, 0]
    return avg


cdef Model make_model(kernel, int intercept_row, double[::1] positive, double[::1] negative):
    cdef Model model
    model.loss = LOSSES.index(kernel.loss)
    model.epsilon = kernel.epsilon
    model.n_outputs = kernel.n_outputs
    model.classification = kernel.classification
    model.fit_intercept = kernel.fit_intercept
    model.intercept_row = intercept_row
    model.positive_weight = &positive[0]
    model.negative_weight = &negative[0]
    model.average_start = kernel.average
    return model


def _class_weights(kernel):
    ones = np.ones(kernel.n_outputs)
    positive = ones if kernel.positive_weight is None else np.asarray(kernel.positive_weight, float)
    negative = ones if kernel.negative_weight is None else np.asarray(kernel.negative_weight, float)
    return np.ascontiguousarray(positive), np.ascontiguousarray(negative)


cdef extern from *:
    void prefetch "__builtin_prefetch"(const void *address) noexcept nogil

# how many distinct rows ahead a pass over a minibatch's rows prefetches them: enough to
# overlap the cache misses of rows scattered over a large model, few enough to stay in
# the L1 cache
cdef int PREFETCH_AHEAD = 16
# how many ratings ahead factorization prefetches their factor rows
cdef int RATINGS_AHEAD = 4


cdef struct RowMap:
    # One minibatch's distinct model rows: an open-addressing map from row to its place
    # among them (sized to the minibatch, so it stays in cache where one slot per model
    # row would not), the place of every id, and the distinct rows in order.
    unsigned int mask
    int *slot_row
    int *slot_place
    int *place
    int *touched
    unsigned int *touched_slot
    int n_touched


cdef int row_map_init(RowMap *rows, long long capacity) except -1:
    cdef unsigned int n_slots = 1
    cdef unsigned int slot
    while n_slots < 2 * capacity:
        n_slots *= 2
    rows.mask = n_slots - 1
    rows.slot_row = <int *> malloc(n_slots * sizeof(int))
    rows.slot_place = <int *> malloc(n_slots * sizeof(int))
    rows.place = <int *> malloc(capacity * sizeof(int))
    rows.touched = <int *> malloc(capacity * sizeof(int))
    rows.touched_slot = <unsigned int *> malloc(capacity * sizeof(int))
    rows.n_touched = 0
    if (rows.slot_row == NULL or rows.slot_place == NULL or rows.place == NULL
            or rows.touched == NULL or rows.touched_slot == NULL):
        raise MemoryError("no memory for a minibatch's rows")
    for slot in range(n_slots):
        rows.slot_row[slot] = -1
    return 0


cdef void row_map_free(RowMap *rows) noexcept:
    free(rows.slot_row)
    free(rows.slot_place)
    free(rows.place)
    free(rows.touched)
    free(rows.touched_slot)


cdef inline void gather_rows(
    RowMap *rows, const int *ids, long long n, Table *t, Rule *rule, int n_outputs,
    bint catch_up, Table *avg, double *scratch, double *snapshot,
) noexcept nogil:
    """Find the distinct rows of ``ids`` and each id's place among them; with
    ``catch_up`` (or an average table), then bring each distinct row up to date, in a
    pass of its own: a loop without the map's unpredictable branches, whose rows'
    closed-form decays the processor overlaps, prefetched a few rows ahead. With a
    ``snapshot``, that pass also copies each row's params there, in place order."""
    cdef long long j
    cdef int row, slot, k
    cdef unsigned int hashed
    rows.n_touched = 0
    for j in range(n):
        row = ids[j]
        hashed = (<unsigned int> row * 2654435761u) & rows.mask
        while rows.slot_row[hashed] != row and rows.slot_row[hashed] != -1:
            hashed = (hashed + 1) & rows.mask
        if rows.slot_row[hashed] == -1:
            rows.slot_row[hashed] = row
            rows.slot_place[hashed] = rows.n_touched
            rows.touched[rows.n_touched] = row
            rows.touched_slot[rows.n_touched] = hashed
            rows.n_touched += 1
        rows.place[j] = rows.slot_place[hashed]
    if not catch_up and avg.w == NULL and snapshot == NULL:
        return
    for slot in range(rows.n_touched):
        if slot + PREFETCH_AHEAD < rows.n_touched:
            # a row's params, state and clock usually share one cache line
            prefetch(t.w + rows.touched[slot + PREFETCH_AHEAD] * t.ws)
        row = rows.touched[slot]
        if catch_up or avg.w != NULL:
            bring_up_to_date(rule, t, avg, row, n_outputs, catch_up, scratch)
        if snapshot != NULL:
            for k in range(n_outputs):
                snapshot[slot * n_outputs + k] = t.w[row * t.ws + k]


cdef inline void release_rows(RowMap *rows) noexcept nogil:
    cdef int slot
    for slot in range(rows.n_touched):
        rows.slot_row[rows.touched_slot[slot]] = -1


cdef inline double plain_sgd_step(
    Rule *rule, Step *step, Model *model, Table *t, const double *data, const int *indices,
    const long long *indptr, const double *y, const double *sample_weight, int start,
    int stop, bint penalised, double *sample_dloss, double *intercept_grad,
) noexcept nogil:
    """One minibatch of plain SGD without L1 or averaging, in two passes over its ids
    and no map of its distinct rows: the step of a row is a sum of its samples' terms,
    so each can go straight into it. The first pass brings each row up to date as it is
    read (a row met again owes nothing) and computes the predictions, all from the
    weights before the step; the second adds ``-eta * dloss * x`` divided by the step's
    L2 decay, which the row then owes (its clock stays where the first pass left it,
    and ``end_step`` moves the global clock on): at its next catch-up it becomes
    ``w * decay - eta * g``, the update of ``update_row``. Returns the weighted loss."""
    cdef int i, k, row
    cdef int n = stop - start
    cdef int n_outputs = model.n_outputs
    cdef long long j
    cdef double x, loss_sum = 0.0
    cdef double *w
    cdef double *prediction
    cdef double *dloss
    cdef double scale = -step.eta / step.decay if penalised else -step.eta
    cdef long long last = indptr[stop] - PREFETCH_AHEAD
    for k in range(n_outputs):
        intercept_grad[k] = 0.0
    for i in range(start, stop):
        prediction = sample_dloss + (i - start) * n_outputs
        for k in range(n_outputs):
            prediction[k] = t.w[model.intercept_row * t.ws + k]
        for j in range(indptr[i], indptr[i + 1]):
            if j < last:  # rows scattered over a large model: their misses overlapped
                prefetch(t.w + indices[j + PREFETCH_AHEAD] * t.ws)
            row = indices[j]
            w = t.w + row * t.ws
            if penalised:
                catch_up_row(rule, t.meta, w, NULL, aux_row(t, row), n_outputs)
            x = data[j]
            for k in range(n_outputs):
                prediction[k] += x * w[k]
        # the sample's derivatives overwrite its predictions, read first
        dloss = prediction
        loss_sum += sample_derivatives(model, prediction, y[i], sample_weight[i], 1.0 / n, dloss)
        for k in range(n_outputs):
            intercept_grad[k] += dloss[k]
    for i in range(start, stop):
        dloss = sample_dloss + (i - start) * n_outputs
        for j in range(indptr[i], indptr[i + 1]):
            w = t.w + indices[j] * t.ws
            x = data[j] * scale
            for k in range(n_outputs):
                w[k] += x * dloss[k]
    return loss_sum


def train_sparse(
    kernel,
    config,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    double[::1] meta,
    double[:, :] average,
    const double[::1] data,
    const int[::1] indices,
    const long long[::1] indptr,
    const double[::1] y,
    const double[::1] sample_weight,
    int batch_size,
):
    """Train on CSR rows (``indices`` are rows of ``params``), ``batch_size`` at a time.

    Returns ``(sum of weighted losses, minibatches)``.
    """
    cdef Rule rule = make_rule(config)
    positive, negative = _class_weights(kernel)
    cdef Model model = make_model(kernel, params.shape[0] - 1, positive, negative)
    cdef Table t = make_table(params, state, aux, meta)
    cdef Table avg = make_average_table(average)
    cdef bint averaging
    cdef int n_outputs = model.n_outputs
    cdef int n_samples = y.shape[0]
    cdef long long max_nnz = 1
    cdef int start, stop, i, k, n, row, slot, n_batches = 0
    cdef long long j, first
    cdef double x, loss_sum = 0.0
    cdef Step step
    cdef bint penalised = rule.l1 > 0.0 or rule.l2 > 0.0
    # plain SGD's steps without L1 or averaging skip the map of distinct rows, unless
    # the step's L2 decay is too strong to divide by (a step size near 1 / l2)
    cdef bint plain = rule.optimizer == SGD and rule.l1 == 0.0 and avg.w == NULL
    cdef int max_rows = 1
    start = 0
    while start < n_samples:
        stop = batch_stop(start, batch_size, n_samples)
        max_nnz = max(max_nnz, indptr[stop] - indptr[start])
        max_rows = max(max_rows, stop - start)
        start = stop
    cdef RowMap rows
    memset(&rows, 0, sizeof(RowMap))
    # the distinct rows' gradients, then the intercept's
    cdef double *grad = <double *> malloc((max_nnz + 1) * n_outputs * sizeof(double))
    cdef double *intercept_grad
    cdef double *prediction = <double *> malloc(n_outputs * sizeof(double))
    cdef double *dloss = <double *> malloc(n_outputs * sizeof(double))
    # a row's values before it is brought up to date (averaged SGD)
    cdef double *scratch = <double *> malloc(n_outputs * sizeof(double))
    # the distinct rows' params once up to date, side by side: the minibatch's
    # predictions read them from a few cache lines instead of one line a row of the
    # model, and the rows' lines do not need to stay in the cache until the update
    cdef double *snapshot = <double *> malloc(max_nnz * n_outputs * sizeof(double))
    # plain SGD: each sample's derivatives, the minibatch's gradient undone
    cdef double *sample_dloss = <double *> malloc(max_rows * n_outputs * sizeof(double))
    try:
        row_map_init(&rows, max_nnz)
        if (grad == NULL or prediction == NULL or dloss == NULL or scratch == NULL
                or snapshot == NULL or sample_dloss == NULL):
            raise MemoryError("no memory for a minibatch's gradient")
        with nogil:
            start = 0
            while start < n_samples:
                stop = batch_stop(start, batch_size, n_samples)
                n = stop - start
                step = begin_step(&rule, t.meta)
                if plain and step.decay >= 0.5:
                    loss_sum += plain_sgd_step(
                        &rule, &step, &model, &t, &data[0], &indices[0], &indptr[0], &y[0],
                        &sample_weight[0], start, stop, penalised, sample_dloss, grad,
                    )
                    end_step(&rule, &step, &t, &model, grad, n, &avg, False)
                    n_batches += 1
                    start = stop
                    continue
                averaging = begin_averaging(&rule, &t, &avg, &model, n, scratch)
                first = indptr[start]
                # each distinct row found, brought up to date and copied once
                gather_rows(
                    &rows, &indices[first], indptr[stop] - first, &t, &rule, n_outputs,
                    penalised, &avg, scratch, snapshot,
                )
                for k in range((rows.n_touched + 1) * n_outputs):
                    grad[k] = 0.0
                intercept_grad = grad + rows.n_touched * n_outputs
                # loss and gradient of the minibatch's mean loss
                for i in range(start, stop):
                    for k in range(n_outputs):
                        prediction[k] = t.w[model.intercept_row * t.ws + k]
                    for j in range(indptr[i], indptr[i + 1]):
                        x = data[j]
                        slot = rows.place[j - first] * n_outputs
                        for k in range(n_outputs):
                            prediction[k] += x * snapshot[slot + k]
                    loss_sum += sample_derivatives(
                        &model, prediction, y[i], sample_weight[i], 1.0 / n, dloss
                    )
                    for j in range(indptr[i], indptr[i + 1]):
                        x = data[j]
                        slot = rows.place[j - first] * n_outputs
                        for k in range(n_outputs):
                            grad[slot + k] += dloss[k] * x
                    if model.fit_intercept:
                        for k in range(n_outputs):
                            intercept_grad[k] += dloss[k]
                # update and scatter
                for slot in range(rows.n_touched):
                    if slot + PREFETCH_AHEAD < rows.n_touched:
                        # the catch-up pass brought the rows into the cache, but the
                        # minibatch's rows and maps outgrow the L2 cache in between
                        prefetch(t.w + rows.touched[slot + PREFETCH_AHEAD] * t.ws)
                    row = rows.touched[slot]
                    update_row(
                        &rule, &step, penalised, t.w + row * t.ws, state_row(&t, row),
                        aux_row(&t, row), grad + slot * n_outputs, n_outputs,
                    )
                    average_row(&avg, t.w + row * t.ws, row, n_outputs, averaging)
                release_rows(&rows)
                end_step(&rule, &step, &t, &model, intercept_grad, n, &avg, averaging)
                n_batches += 1
                start = stop
    finally:
        row_map_free(&rows)
        free(grad)
        free(prediction)
        free(dloss)
        free(scratch)
        free(snapshot)
        free(sample_dloss)
    return loss_sum, n_batches


def train_dense(
    kernel,
    config,
    double[:, :] params,
    double[:, :] state,
    double[:, :] aux,
    double[::1] meta,
    double[:, :] average,
    const double[:, ::1] X,
    const double[::1] y,
    const double[::1] sample_weight,
    int batch_size,
):
    """Train on dense rows, ``batch_size`` at a time; every minibatch touches every row.

    Returns ``(sum of weighted losses, minibatches)``.
    """
    cdef Rule rule = make_rule(config)
    positive, negative = _class_weights(kernel)
    cdef Model model = make_model(kernel, params.shape[0] - 1, positive, negative)
    cdef Table t = make_table(params, state, aux, meta)
    cdef Table avg = make_average_table(average)
    cdef bint averaging
    cdef int n_outputs = model.n_outputs
    cdef int n_features = X.shape[1]
    cdef int n_samples = X.shape[0]
    cdef int start, stop, i, k, n, row, n_batches = 0
    cdef double x, loss_sum = 0.0
    cdef Step step
    cdef bint penalised = rule.l1 > 0.0 or rule.l2 > 0.0
    # the features' gradients, then the intercept's
    cdef double *grad = <double *> malloc((n_features + 1) * n_outputs * sizeof(double))
    cdef double *prediction = <double *> malloc(n_outputs * sizeof(double))
    cdef double *dloss = <double *> malloc(n_outputs * sizeof(double))
    # a row's values before it is brought up to date (averaged SGD)
    cdef double *scratch = <double *> malloc(n_outputs * sizeof(double))
    cdef double *intercept_grad = grad + n_features * n_outputs
    try:
        if grad == NULL or prediction == NULL or dloss == NULL or scratch == NULL:
            raise MemoryError("no memory for a minibatch's gradient")
        with nogil:
            start = 0
            while start < n_samples:
                stop = batch_stop(start, batch_size, n_samples)
                n = stop - start
                step = begin_step(&rule, t.meta)
                averaging = begin_averaging(&rule, &t, &avg, &model, n, scratch)
                if penalised or avg.w != NULL:  # owed only where other workers stepped
                    for row in range(n_features):
                        bring_up_to_date(
                            &rule, &t, &avg, row, n_outputs, penalised, scratch
                        )
                for k in range((n_features + 1) * n_outputs):
                    grad[k] = 0.0
                for i in range(start, stop):
                    for k in range(n_outputs):
                        prediction[k] = t.w[n_features * t.ws + k]
                    for row in range(n_features):
                        x = X[i, row]
                        for k in range(n_outputs):
                            prediction[k] += x * t.w[row * t.ws + k]
                    loss_sum += sample_derivatives(
                        &model, prediction, y[i], sample_weight[i], 1.0 / n, dloss
                    )
                    for row in range(n_features):
                        x = X[i, row]
                        for k in range(n_outputs):
                            grad[row * n_outputs + k] += dloss[k] * x
                    if model.fit_intercept:
                        for k in range(n_outputs):
                            intercept_grad[k] += dloss[k]
                for row in range(n_features):
                    update_row(
                        &rule, &step, penalised, t.w + row * t.ws, state_row(&t, row),
                        aux_row(&t, row), grad + row * n_outputs, n_outputs,
                    )
                    average_row(&avg, t.w + row * t.ws, row, n_outputs, averaging)
                end_step(&rule, &step, &t, &model, intercept_grad, n, &avg, averaging)
                n_batches += 1
                start = stop
    finally:
        free(grad)
        free(prediction)
        free(dloss)
        free(scratch)
    return loss_sum, n_batches


def train_factorization(
    config,
    double[:, :] users,
    double[:, :] user_state,
    double[::1] user_meta,
    double[:, :] items,
    double[:, :] item_state,
    double[::1] item_meta,
    const int[::1] user_ids,
    const int[::1] item_ids,
    const double[::1] y,
    const double[::1] sample_weight,
    int batch_size,
    double global_mean,
    double alpha,
    double alpha_bias,
):
    """Biased matrix factorization, ``batch_size`` ratings a step, in place.

    A row of ``users`` / ``items`` holds ``n_components`` factors then the bias; the ids
    are rows of them. Each step moves every row its ratings touch by the optimizer step
    of the gradient of ``mean((r - r_hat)^2 / 2 + alpha / 2 * (|p_u|^2 + |q_i|^2) +
    alpha_bias / 2 * (b_u^2 + b_i^2))``, the regularisation applied per rating, as in
    Funk's SVD and Surprise. Returns ``(sum of weighted squared errors / 2, steps)``.
    """
    cdef Rule rule = make_rule(config)
    cdef double[:, :] no_aux = np.zeros((0, 0))
    cdef Table u = make_table(users, user_state, no_aux, user_meta)
    cdef Table v = make_table(items, item_state, no_aux, item_meta)
    cdef int width = users.shape[1]
    cdef int k_factors = width - 1
    cdef int n_samples = y.shape[0]
    cdef int start, stop, i, c, n, slot, n_batches = 0
    cdef double error, weighted, scale, loss_sum = 0.0
    cdef Step user_step, item_step
    cdef double *p
    cdef double *q
    cdef double *gu
    cdef double *gi
    cdef RowMap user_map
    cdef RowMap item_map
    cdef Table no_average  # factorization is not averaged
    memset(&no_average, 0, sizeof(Table))
    memset(&user_map, 0, sizeof(RowMap))
    memset(&item_map, 0, sizeof(RowMap))
    # a batch takes up to half a batch more (batch_stop)
    cdef long long capacity = min(batch_size + batch_size // 2, n_samples) if n_samples > 0 else 1
    cdef double *user_grad = <double *> malloc(capacity * width * sizeof(double))
    cdef double *item_grad = <double *> malloc(capacity * width * sizeof(double))
    try:
        row_map_init(&user_map, capacity)
        row_map_init(&item_map, capacity)
        if user_grad == NULL or item_grad == NULL:
            raise MemoryError("no memory for a minibatch's gradient")
        with nogil:
            start = 0
            while start < n_samples:
                stop = batch_stop(start, batch_size, n_samples)
                n = stop - start
                scale = 1.0 / n
                user_step = begin_step(&rule, u.meta)
                item_step = begin_step(&rule, v.meta)
                gather_rows(
                    &user_map, &user_ids[start], n, &u, &rule, width, False, &no_average, NULL,
                    NULL,
                )
                gather_rows(
                    &item_map, &item_ids[start], n, &v, &rule, width, False, &no_average, NULL,
                    NULL,
                )
                for c in range(user_map.n_touched * width):
                    user_grad[c] = 0.0
                for c in range(item_map.n_touched * width):
                    item_grad[c] = 0.0
                for i in range(start, stop):
                    if i + RATINGS_AHEAD < stop:
                        # the factor rows of a rating a few ahead: long rows, mostly
                        # out of the cache for items
                        for c in range(0, width, 8):
                            prefetch(u.w + user_ids[i + RATINGS_AHEAD] * u.ws + c)
                            prefetch(v.w + item_ids[i + RATINGS_AHEAD] * v.ws + c)
                    p = u.w + user_ids[i] * u.ws
                    q = v.w + item_ids[i] * v.ws
                    error = global_mean + p[k_factors] + q[k_factors] - y[i]
                    for c in range(k_factors):
                        error += p[c] * q[c]
                    loss_sum += 0.5 * sample_weight[i] * error * error
                    weighted = sample_weight[i] * error * scale
                    gu = user_grad + user_map.place[i - start] * width
                    gi = item_grad + item_map.place[i - start] * width
                    for c in range(k_factors):
                        gu[c] += weighted * q[c] + alpha * scale * p[c]
                        gi[c] += weighted * p[c] + alpha * scale * q[c]
                    gu[k_factors] += weighted + alpha_bias * scale * p[k_factors]
                    gi[k_factors] += weighted + alpha_bias * scale * q[k_factors]
                for slot in range(user_map.n_touched):
                    i = user_map.touched[slot]
                    update_row(
                        &rule, &user_step, False, u.w + i * u.ws, state_row(&u, i), NULL,
                        user_grad + slot * width, width,
                    )
                for slot in range(item_map.n_touched):
                    i = item_map.touched[slot]
                    update_row(
                        &rule, &item_step, False, v.w + i * v.ws, state_row(&v, i), NULL,
                        item_grad + slot * width, width,
                    )
                release_rows(&user_map)
                release_rows(&item_map)
                atomic_add(&u.meta[T_SLOT], n)
                atomic_add(&v.meta[T_SLOT], n)
                n_batches += 1
                start = stop
    finally:
        row_map_free(&user_map)
        row_map_free(&item_map)
        free(user_grad)
        free(item_grad)
    return loss_sum, n_batches


def bring_average_up_to_date(
    config, double[:, :] params, double[:, :] state, double[:, :] aux, double[::1] meta,
    double[:, :] average,
):
    """Bring every row of (copies of) a model and its average table up to date, in place:
    the penalty each row owes and the averaged steps it missed (see averaged SGD)."""
    cdef Rule rule = make_rule(config)
    cdef Table t = make_table(params, state, aux, meta)
    cdef Table avg = make_average_table(average)
    cdef int n_outputs = params.shape[1]
    cdef int n_penalised = config.penalised_rows
    cdef bint penalised = (rule.l1 > 0.0 or rule.l2 > 0.0) and aux.shape[0] > 0
    cdef int row
    cdef double *scratch = <double *> malloc(n_outputs * sizeof(double))
    if scratch == NULL:
        raise MemoryError("no memory to bring the average up to date")
    try:
        with nogil:
            for row in range(params.shape[0]):
                bring_up_to_date(
                    &rule, &t, &avg, row, n_outputs, penalised and row < n_penalised, scratch
                )
    finally:
        free(scratch)


def loss_values(str loss, const double[::1] p, const double[::1] y, double epsilon):
    """``(loss, dloss)`` of each prediction, for tests against scikit-learn's losses."""
    cdef int code = LOSSES.index(loss)
    out_loss = np.empty(p.shape[0])
    out_dloss = np.empty(p.shape[0])
    cdef double[::1] l = out_loss
    cdef double[::1] d = out_dloss
    cdef int i
    for i in range(p.shape[0]):
        loss_and_derivative(code, p[i], y[i], epsilon, &l[i], &d[i])
    return out_loss, out_dloss
