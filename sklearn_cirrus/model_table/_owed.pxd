# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
# A key's penalty rule and the closed-form catch-up of a row that missed steps: what a
# kernel applies before it trains on a row and a store before it hands a row out
# (``_reading.up_to_date_copy``). The rules' maths: ``kernels/_sgd.pyx``; the row
# layout: ``layout.ModelTable``. Inline functions, compiled into each module that
# cimports them.

from libc.math cimport exp, sqrt

# in the order of optimizers.OPTIMIZERS and optimizers.LEARNING_RATES
cdef enum:
    SGD, MOMENTUM, NESTEROV, ADAGRAD

cdef enum:
    CONSTANT, OPTIMAL, INVSCALING, ADAPTIVE

# slots of the meta array (optimizers.META_NAMES)
cdef enum:
    T_SLOT, ETA_SCALE_SLOT, LOG_DECAY_SLOT, PENALTY_STEPS_SLOT


cdef struct Rule:
    int optimizer
    int schedule
    double eta0
    double power_t
    double alpha
    double optimal_init
    double momentum
    double epsilon
    double l2
    double l1
    # penalty step = eta * penalty_scale (1 / (1 - momentum) for the momentum methods)
    double penalty_scale
    double step_scale
    double accumulator_scale


cdef inline Rule make_rule(object config) except *:
    cdef Rule rule
    rule.optimizer, rule.schedule = config.codes
    rule.eta0 = config.eta0
    rule.power_t = config.power_t
    rule.alpha = config.alpha
    rule.optimal_init = config.optimal_init
    rule.momentum = config.momentum
    rule.epsilon = config.adagrad_epsilon
    rule.l2 = config.l2
    rule.l1 = config.l1
    rule.penalty_scale = 1.0
    rule.step_scale = config.step_scale
    rule.accumulator_scale = config.accumulator_scale
    if rule.optimizer == MOMENTUM or rule.optimizer == NESTEROV:
        rule.penalty_scale = 1.0 / (1.0 - config.momentum)
    return rule


cdef inline void cumulative_l1(double *w, double *applied, double u) noexcept nogil:
    """Tsuruoka et al.'s cumulative L1 step, as scikit-learn's ``l1penalty``."""
    cdef double z = w[0]
    if z > 0.0:
        w[0] = max(0.0, z - (u + applied[0]))
    elif z < 0.0:
        w[0] = min(0.0, z + (u - applied[0]))
    applied[0] += w[0] - z



cdef inline double exp_minus(double x) noexcept nogil:
    """``exp(-x)`` for ``x >= 0``; a Taylor polynomial where x is tiny (most rows, most
    steps), exact to ~1e-14 relative there and several times cheaper than ``exp``."""
    if x < 1e-3:
        return 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0)))
    return exp(-x)


cdef inline void catch_up_row(
    Rule *rule, double *meta, double *w, double *state, double *aux, int n_outputs
) noexcept nogil:
    """Apply the penalty of every step the row missed, in closed form (module doc)."""
    cdef int k
    cdef double owed, h, decay
    if rule.optimizer == ADAGRAD:
        owed = meta[PENALTY_STEPS_SLOT] - aux[0]
        if owed > 0.0:
            for k in range(n_outputs):
                h = sqrt(state[k]) + rule.epsilon
                if rule.l1 > 0.0:
                    aux[1 + n_outputs + k] += rule.l1 * owed / h
                    cumulative_l1(&w[k], &aux[1 + k], aux[1 + n_outputs + k])
                if rule.l2 > 0.0:
                    w[k] *= exp_minus(rule.l2 * owed / h)
        aux[0] = meta[PENALTY_STEPS_SLOT]
        return
    owed = meta[LOG_DECAY_SLOT] - aux[0]
    if owed < 0.0:
        decay = exp_minus(-owed)
        for k in range(n_outputs):
            w[k] *= decay
    aux[0] = meta[LOG_DECAY_SLOT]
    if rule.l1 > 0.0:
        for k in range(n_outputs):
            cumulative_l1(&w[k], &aux[1 + k], rule.l1 * meta[PENALTY_STEPS_SLOT])

