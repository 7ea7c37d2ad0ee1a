"""Entries of a remote store's log: what a worker changed, applied by the others."""

import numpy as np
import pytest

from sklearn_cirrus.model_table import ModelTable, up_to_date_params
from sklearn_cirrus.model_table.optimizers import (
    LOG_DECAY_SLOT,
    PENALTY_STEPS_SLOT,
    OptimizerConfig,
)
from sklearn_cirrus.store.delta_log import (
    DeltaEntry,
    apply_entry,
    entry_since,
    from_varint_steps,
    row_id_bytes,
    rows_of,
)

# three penalised feature rows and an intercept row
N_ROWS = 4


def _table(name, rng):
    optimizer = OptimizerConfig(name, l2=0.5, penalised_rows=N_ROWS - 1)
    params = rng.normal(size=(N_ROWS, 2))
    state = rng.uniform(0.5, 2.0, size=(N_ROWS, 2)) if optimizer.has_state else np.zeros((0, 2))
    return ModelTable(params, state, np.zeros((N_ROWS, 1)), np.zeros(4), optimizer)


def _clock_slot(name):
    return PENALTY_STEPS_SLOT if name == "adagrad" else LOG_DECAY_SLOT


def _worker(base, rows, clock, gradient):
    """A worker's replica of ``base``: its ``rows`` brought up to ``clock`` (their L2
    decay, as the kernel does), then a gradient step; returns its entry."""
    replica = ModelTable(
        base.params.copy(), base.state.copy(), base.aux.copy(), base.meta.copy(), base.optimizer
    )
    before = rows_of(replica, rows)
    replica.meta[_clock_slot(base.optimizer.name)] = clock
    replica.params[:] = up_to_date_params(replica, None, pulled=False)
    replica.aux[:, 0] = np.where(np.arange(N_ROWS) < N_ROWS - 1, clock, replica.aux[:, 0])
    replica.params[rows] += gradient
    return entry_since(replica, rows, before)


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
def test_two_workers_decaying_one_row_decay_it_once_in_either_order(name, rng):
    # both workers bring row 2 up to date before their steps: the folded model decays it
    # once, to the later clock, whatever the order the entries arrive in
    base = _table(name, rng)
    early, late = (-0.1, -0.3) if name != "adagrad" else (0.2, 0.6)
    gradient_a, gradient_b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    entry_a = _worker(base, np.array([0, 2]), early, gradient_a)
    entry_b = _worker(base, np.array([2, 3]), late, gradient_b)

    folded = []
    for order in ((entry_a, entry_b), (entry_b, entry_a)):
        table = ModelTable(
            base.params.copy(), base.state.copy(), base.aux.copy(), base.meta.copy(), base.optimizer
        )
        for entry in order:
            apply_entry(table, entry)
        table.meta[_clock_slot(name)] = late
        folded.append(up_to_date_params(table, None, pulled=False))
    np.testing.assert_allclose(folded[0], folded[1], rtol=1e-12)

    # the eager model: every row decays once from 0 to the late clock; a gradient added
    # at the early clock decays from it; the intercept (row 3) never decays
    if name == "adagrad":
        rate = base.optimizer.l2 / (np.sqrt(base.state) + base.optimizer.adagrad_epsilon)
        decay = np.exp(-rate * late)
        since_early = np.exp(-rate * (late - early))
    else:
        decay, since_early = (
            np.full((N_ROWS, 2), np.exp(late)),
            np.full((N_ROWS, 2), np.exp(late - early)),
        )
    expected = base.params * decay
    expected[3] = base.params[3]
    expected[0] += gradient_a[0] * since_early[0]
    expected[2] += gradient_a[1] * since_early[2] + gradient_b[0]
    expected[3] += gradient_b[1]
    np.testing.assert_allclose(folded[0], expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
@pytest.mark.parametrize("float_bytes", [4, 2])
def test_a_rounded_entry_rebuilds_the_replica_it_rounded(name, float_bytes, rng):
    # a worker's replica, its rows decayed and stepped, sends a single- or
    # half-precision entry: the replica keeps the rounded changes, so a store that adds
    # the entry to the rows the replica started from holds the replica's values
    base = _table(name, rng)
    base.params[:] *= 1 + 1e-9 * rng.normal(size=base.params.shape)  # (all 53 bits used)
    rows = np.array([0, 2, 3])
    replica = ModelTable(
        base.params.copy(), base.state.copy(), base.aux.copy(), base.meta.copy(), base.optimizer
    )
    before = rows_of(replica, rows)
    clock = 0.3 if name == "adagrad" else -0.3
    replica.meta[_clock_slot(name)] = clock
    replica.params[:] = up_to_date_params(replica, None, pulled=False)
    replica.aux[: N_ROWS - 1, 0] = clock + 1e-9  # (an offset from the base that rounds)
    replica.params[rows] += rng.normal(size=(3, 2)) / 3
    if replica.state.shape[0]:
        replica.state[rows] += rng.uniform(size=(3, 2)) / 3
    trained = replica.params.copy()
    entry = entry_since(replica, rows, before, float_bytes)
    assert entry.float_bytes == float_bytes and not np.array_equal(replica.params, trained)
    np.testing.assert_allclose(replica.params, trained, rtol=1e-3 if float_bytes == 2 else 1e-6)

    blob = entry.to_bytes()
    double = DeltaEntry(entry.rows, entry.params, entry.state, entry.aux, entry.clocks)
    header_and_rows = 8 * 8 + len(row_id_bytes(rows))
    # then the clocks, coded alike in both: their count, the distinct ones, a code a row
    clocks = 8 + 8 * np.unique(entry.clocks).size + rows.size
    changes = len(blob) - header_and_rows - clocks
    if float_bytes == 2:  # (a row's scales, for params and state)
        changes -= (2 if entry.state.shape[1] else 1) * rows.size
    assert changes == (len(double.to_bytes()) - header_and_rows - clocks) * float_bytes / 8
    received = DeltaEntry.from_bytes(blob)
    store = ModelTable(
        base.params.copy(), base.state.copy(), base.aux.copy(), base.meta.copy(), base.optimizer
    )
    apply_entry(store, received)
    np.testing.assert_array_equal(store.aux[rows], replica.aux[rows])
    np.testing.assert_array_equal(store.state, replica.state)
    np.testing.assert_allclose(store.params[rows], replica.params[rows], rtol=1e-15, atol=0)
    # applied as it travels (half floats decoded as they are added): the same values
    as_sent = ModelTable(
        base.params.copy(), base.state.copy(), base.aux.copy(), base.meta.copy(), base.optimizer
    )
    apply_entry(as_sent, blob)
    for name in ("params", "state", "aux"):
        np.testing.assert_array_equal(getattr(as_sent, name), getattr(store, name))


def test_half_precision_changes_round_as_numpy_rounds_to_float16(rng):
    # unpenalised rows, so that a change is the plain difference: each row's changes in
    # a group of columns are scaled by the power of two that brings the largest to
    # [2**14, 2**15), then rounded to the nearest float16 (ties to even); those below
    # float16's normal range (2**-14, 2**-28 of the row's largest) go to zero
    optimizer = OptimizerConfig("adagrad")
    n = 2000
    params = rng.normal(size=(n, 3))
    state = rng.uniform(0.5, 2.0, size=(n, 3))
    table = ModelTable(params, state, np.zeros((n, 0)), np.zeros(4), optimizer)
    rows = np.arange(n)
    before = rows_of(table, rows)
    # changes spanning 40 binary orders of magnitude within rows, exact ties, a row
    # with no change
    change = rng.normal(size=(n, 3)) * 2.0 ** rng.randint(-40, 0, size=(n, 3))
    change[0] = 2.0**-30 * np.array([1 + 2**-11, 1 + 3 * 2**-11, 2**15])  # (ties, at 2**14)
    change[1] = 0.0
    table.params[:] = before.params + change
    table.state[:] = before.state + 1e3 * np.abs(change)
    exact_params = table.params - before.params
    exact_state = table.state - before.state
    entry = entry_since(table, rows, before, float_bytes=2)

    for group, (sent, exact) in enumerate(
        ((entry.params, exact_params), (entry.state, exact_state))
    ):
        scales = entry.scales[:, group].astype(int)[:, None]
        scaled = np.ldexp(exact, -scales)
        moved = np.abs(exact).max(axis=1) > 0
        assert (2.0**14 <= np.abs(scaled[moved]).max(axis=1)).all()
        assert (np.abs(scaled[moved]).max(axis=1) < 2.0**15).all()
        expected = np.ldexp(scaled.astype(np.float16).astype(float), scales)
        expected[np.abs(scaled) < 2.0**-14] = 0.0
        np.testing.assert_array_equal(sent, expected)
        assert (sent == 0).sum() > (exact == 0).sum()  # (some went to zero)
    assert entry.params[0, 0] == 2.0**-30 and entry.params[0, 1] == 2.0**-30 * (1 + 4 * 2**-11)
    # the replica holds what the store rebuilds, and the entry travels as it is
    np.testing.assert_array_equal(table.params, before.params + entry.params)
    back = DeltaEntry.from_bytes(entry.to_bytes())
    for name in ("params", "state", "aux", "scales"):
        np.testing.assert_array_equal(getattr(back, name), getattr(entry, name))


@pytest.mark.parametrize("clocked", [True, False])
def test_an_entry_travels_as_bytes(clocked, rng):
    entry = DeltaEntry(
        np.array([5, 0, 9]),
        rng.normal(size=(3, 2)),
        np.zeros((3, 0)),  # plain SGD keeps no state
        rng.normal(size=(3, 4)),
        rng.normal(size=3) if clocked else None,
    )
    back = DeltaEntry.from_bytes(entry.to_bytes())
    np.testing.assert_array_equal(back.rows, entry.rows)
    for name in ("params", "state", "aux"):
        np.testing.assert_array_equal(getattr(back, name), getattr(entry, name))
    if clocked:
        np.testing.assert_array_equal(back.clocks, entry.clocks)
    else:
        assert back.clocks is None


@pytest.mark.parametrize(
    "rows",
    [
        np.array([], dtype=np.int64),
        np.array([5, 0, 9]),  # out of order: a step back is a negative difference
        np.array([0, 2**31 - 1, 1, 2**40]),  # the largest differences
        np.arange(0, 2**20, 7),
    ],
)
def test_row_ids_travel_as_the_varints_of_their_differences(rows):
    encoded = row_id_bytes(rows)
    back = from_varint_steps(np.frombuffer(encoded, dtype=np.uint8), rows.size)
    np.testing.assert_array_equal(back, rows)
    if rows.size:  # a damaged entry: said, not read past
        with pytest.raises(ValueError, match="end before"):
            from_varint_steps(np.frombuffer(encoded, dtype=np.uint8)[:-1], rows.size)
    if rows.size > 100:  # increasing and close: a byte a row, not an int32's four
        assert len(encoded) == rows.size


def test_a_runs_few_clocks_travel_exactly_as_a_byte_a_row(rng):
    # a run's rows reach the clocks of its minibatches only: a dictionary of them and a
    # code a row, exact whatever the precision of the changes
    n = 5000
    rows = np.sort(rng.choice(2**20, size=n, replace=False))
    minibatch_clocks = 1e4 + np.cumsum(rng.uniform(0, 1e-3, size=64))
    clocks = rng.choice(minibatch_clocks, size=n)
    sizes = {}
    for float_bytes in (8, 4):
        entry = DeltaEntry(
            rows,
            rng.normal(size=(n, 1)),
            np.zeros((n, 0)),
            np.zeros((n, 0)),
            clocks,
            float_bytes=float_bytes,
            base_clock=1e4,
        )
        blob = entry.to_bytes()
        np.testing.assert_array_equal(DeltaEntry.from_bytes(blob).clocks, clocks)
        sizes[float_bytes] = len(blob)
        # the header, the ids, the dictionary (its count, 64 clocks), a code and a change a row
        header_ids = 8 * 8 + len(row_id_bytes(rows))
        assert len(blob) == header_ids + 8 + 8 * 64 + n * (1 + float_bytes)
    # a damaged code, past the dictionary: said, not read as another row's clock
    damaged = bytearray(blob)
    damaged[8 * 8 + len(row_id_bytes(rows)) + 8 + 8 * 64] = 200
    with pytest.raises(ValueError, match="clock codes point past"):
        DeltaEntry.from_bytes(bytes(damaged))
    damaged = bytearray(blob)
    damaged[4 * 8] = 7  # the header's word for how the clocks travel
    with pytest.raises(ValueError, match="clocks are coded in no known way"):
        DeltaEntry.from_bytes(bytes(damaged))


def test_single_precision_clocks_are_offsets_added_back_in_double_precision(rng):
    # a penalty clock of a long fit is large; its rows' offsets from it small: a float32
    # offset added to the base in float32 would round the clock to the base's precision.
    # (More distinct clocks than a dictionary holds: they travel one a row.)
    n = 400
    rows = np.sort(rng.choice(2**20, size=n, replace=False))
    offsets = -rng.uniform(0, 1, size=n)
    entry = DeltaEntry(
        rows,
        rng.normal(size=(n, 1)),
        np.zeros((n, 0)),
        np.zeros((n, 0)),
        1e4 + offsets,
        float_bytes=4,
        base_clock=1e4,
    )
    back = DeltaEntry.from_bytes(entry.to_bytes())
    np.testing.assert_array_equal(back.rows, rows)
    sent = (entry.clocks - 1e4).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(back.clocks, 1e4 + sent)


def test_an_entry_without_clocks_adds_every_column(rng):
    # a store's add_table: plain additions, the clock column included
    table = _table("adagrad", rng)
    before = ModelTable(
        table.params.copy(),
        table.state.copy(),
        table.aux.copy(),
        table.meta.copy(),
        table.optimizer,
    )
    change = DeltaEntry(np.array([1, 3]), np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1)), None)
    apply_entry(table, change)
    np.testing.assert_array_equal(table.params[[1, 3]], before.params[[1, 3]] + 1)
    np.testing.assert_array_equal(table.state[[1, 3]], before.state[[1, 3]] + 1)
    np.testing.assert_array_equal(table.aux[[1, 3], 0], [1.0, 1.0])
    np.testing.assert_array_equal(table.params[[0, 2]], before.params[[0, 2]])


def test_a_run_counts_its_rows_and_finds_the_new_ones_in_increasing_order():
    from sklearn_cirrus.model_table._delta import bitmap_words, touch

    counts = np.zeros(201, dtype=np.int32)
    fresh = np.zeros(bitmap_words(201), dtype=np.uint64)
    ids = np.array([7, 2, 7, 0, 2, 199, 64, 63, 9], dtype=np.int32)
    every_sample = np.array([200])  # (an intercept)
    new = touch(ids, every_sample, 3, counts, fresh)
    np.testing.assert_array_equal(new, [0, 2, 7, 9, 63, 64, 199, 200])
    assert not fresh.any()  # ready for the next piece
    # a later piece of the run: only the rows it is the first to touch are new
    np.testing.assert_array_equal(touch(ids[:2], every_sample, 1, counts, fresh), [])
    np.testing.assert_array_equal(
        touch(np.array([5, 7], dtype=np.int32), every_sample[:0], 1, counts, fresh), [5]
    )
    assert counts[[7, 2, 0, 5, 200, 1]].tolist() == [4, 3, 1, 1, 4, 0]


def test_an_entry_log_keeps_the_latest_entries_within_its_bytes():
    from sklearn_cirrus.store.delta_log import EntryLog

    log = EntryLog(keep_bytes=10)
    for entry in (b"aaaa", b"bbbb", b"cccc"):
        log.append(entry)
    # 12 bytes: the first entry went, positions still count from the first ever
    assert (log.start, log.end) == (1, 3)
    assert log.since(1) == [b"bbbb", b"cccc"]
    assert log.since(3) == []
    assert log.since(0) is None  # fell behind what is kept: load the whole table
    log.append(b"x" * 50)  # one entry over the budget stays: the newest is always kept
    assert log.since(3) == [b"x" * 50]


class _ReplicaStore:
    """A remote store to choose a trainer for: no table to lend, replicas to load."""

    def table(self, key):
        return None

    def load_replica(self, key):
        raise AssertionError("not loaded before training")


@pytest.mark.parametrize("n_workers, expected", [(1, 64), (2, 32), (3, 1), (4, 1)])
def test_factorization_runs_are_long_for_two_workers_at_most(n_workers, expected):
    # a user's and an item's factors move together: stale ones from more than one
    # other worker pulled them apart (RMSE over the bar with 4 workers at k=2-4)
    from sklearn_cirrus.kernels.factorization import FactorizationKernel
    from sklearn_cirrus.runtime.trainers import make_trainer

    kernel = FactorizationKernel(n_users=10, n_items=10, n_components=2)
    trainer = make_trainer(kernel, _ReplicaStore(), 512, None, n_workers, 80_000)
    assert trainer.exchange_every == expected


def test_wide_rows_travel_in_half_precision_narrow_ones_in_single():
    # matrix factorization's rows (factors and their AdaGrad state) halve their entries
    # in half precision; a linear model's one weight a row saves too little to scale it
    from sklearn_cirrus.runtime.trainers import entry_float_bytes

    def table(columns, name):
        optimizer = OptimizerConfig(name)
        state = np.zeros((4, columns)) if optimizer.has_state else np.zeros((0, columns))
        return ModelTable(np.zeros((4, columns)), state, np.zeros((4, 0)), np.zeros(4), optimizer)

    assert entry_float_bytes(table(51, "adagrad")) == 2
    assert entry_float_bytes(table(1, "adagrad")) == 4
    assert entry_float_bytes(table(1, "sgd")) == 4


def test_a_replica_counts_the_other_workers_squared_gradients_while_a_run_trains():
    # matrix factorization, 2 workers on a replica store: AdaGrad's accumulators gain
    # each squared gradient twice while a run trains (the other worker's share on a
    # shared table), and the run's entry, and the replica after it, hold it once
    from sklearn_cirrus.data.batch import Batch
    from sklearn_cirrus.kernels.factorization import FactorizationKernel
    from sklearn_cirrus.runtime.trainers import make_trainer

    kernel = FactorizationKernel(n_users=3, n_items=3, n_components=2, global_mean=3.0)
    optimizer = OptimizerConfig("adagrad", eta0=0.1)
    rng = np.random.RandomState(0)

    def table():
        return ModelTable(
            rng.normal(size=(3, 3)), np.ones((3, 3)), np.zeros((3, 0)), np.zeros(4), optimizer
        )

    start = {"users": table(), "items": table()}
    one_rating = Batch(np.array([[1, 2]]), np.array([5.0]), np.ones(1))
    gained = {}
    for scale in (1.0, 2.0):
        tables = {key: t.copy() for key, t in start.items()}
        for key in tables:
            tables[key].optimizer = OptimizerConfig("adagrad", eta0=0.1, accumulator_scale=scale)
        kernel.train_tables(tables, one_rating, 1)
        gained[scale] = tables["users"].state[1] - start["users"].state[1]
    np.testing.assert_allclose(gained[2.0], 2 * gained[1.0], rtol=1e-12)
    assert (gained[1.0] > 0).all()

    # the entry divides the run's gain by the scale, in the replica too
    replica = start["users"].copy()
    rows = np.array([1])
    before = rows_of(replica, rows)
    replica.state[1] += 2 * gained[1.0]
    entry = entry_since(replica, rows, before, state_scale=2.0)
    np.testing.assert_allclose(entry.state[0], gained[1.0], rtol=1e-12)
    np.testing.assert_allclose(replica.state[1], start["users"].state[1] + gained[1.0])

    # who scales: matrix factorization's replicas, by workers, unless significance
    # filters their changes (carried from run to run); a linear model's do not
    def scale(kernel, n_workers, significance=None):
        trainer = make_trainer(
            kernel, _ReplicaStore(), 512, None, n_workers, 80_000, None, significance
        )
        return trainer.accumulator_scale

    from sklearn_cirrus.kernels.linear import LinearKernel

    assert [scale(kernel, n) for n in (1, 2, 4)] == [1.0, 2.0, 4.0]
    assert scale(kernel, 2, significance=0.5) == 1.0
    assert scale(LinearKernel("log_loss", 10), 2) == 1.0


@pytest.mark.parametrize("float_bytes", [8, 4])
def test_a_run_damps_its_changes_of_the_rows_most_samples_touch(float_bytes, rng):
    # every worker's run changes the rows every sample touches (the intercept) at once,
    # each from the same stale value: a run's change of a row is damped by
    # 1 / (1 + spread * share), share the run's samples that touched it; in the replica
    # too, which stays what the store rebuilds
    from sklearn_cirrus.store.delta_log import SharedRows

    base = _table("sgd", rng)
    base.optimizer = OptimizerConfig("sgd")  # (no penalty: the changes are the steps)
    replica = base.copy()
    rows = np.arange(N_ROWS)
    before = rows_of(replica, rows)
    step = rng.normal(size=(N_ROWS, 2))
    replica.params += step
    counts = np.array([0, 25, 50, 100], dtype=np.int32)  # the intercept in every sample
    entry = entry_since(
        replica, rows, before, float_bytes, shared=SharedRows(counts, samples=100, spread=3.0)
    )
    expected = step / (1 + 3.0 * np.array([0, 0.25, 0.5, 1.0]))[:, None]
    tolerance = 1e-7 if float_bytes == 4 else 1e-12
    np.testing.assert_allclose(entry.params, expected, rtol=tolerance)
    rebuilt = base.copy()
    apply_entry(rebuilt, entry)
    np.testing.assert_array_equal(replica.params, rebuilt.params)


def test_how_a_batchs_samples_touch_a_linear_models_rows():
    from scipy import sparse

    from sklearn_cirrus.data.batch import Batch
    from sklearn_cirrus.kernels.linear import LinearKernel
    from sklearn_cirrus.model_table import _delta

    counts = np.zeros(7, dtype=np.int32)  # 5 features, the intercept, the average's count

    def count(planner, X, key):
        ids, every_sample = planner.touches(Batch(X, np.ones(len(y)), np.ones(len(y))))[key]
        return _delta.touch(ids, every_sample, X.shape[0], counts, np.zeros(1, dtype=np.uint64))

    y = np.ones(3)
    X = sparse.csr_matrix(np.array([[1, 0, 2, 0, 0], [0, 0, 3, 0, 1], [0, 0, 1, 0, 0]]))
    planner = LinearKernel("log_loss", 5).row_planner()
    np.testing.assert_array_equal(count(planner, X, "model"), [0, 2, 4, 5])
    np.testing.assert_array_equal(counts, [1, 0, 3, 0, 1, 3, 0])
    y = np.ones(1)
    np.testing.assert_array_equal(count(planner, X[:1].toarray(), "model"), [1, 3])  # dense
    np.testing.assert_array_equal(counts, [2, 1, 4, 1, 2, 4, 0])
    counts[:] = 0
    averaged = LinearKernel("log_loss", 5, average=1).row_planner()
    np.testing.assert_array_equal(count(averaged, X[:1], "average"), [0, 2, 5, 6])


def test_who_damps_shared_rows_a_linear_model_with_several_workers_unfiltered():
    from sklearn_cirrus.kernels.factorization import FactorizationKernel
    from sklearn_cirrus.kernels.linear import LinearKernel
    from sklearn_cirrus.runtime.trainers import make_trainer

    def spread(kernel, n_workers, significance=None):
        trainer = make_trainer(
            kernel, _ReplicaStore(), 512, None, n_workers, 80_000, None, significance
        )
        return trainer.shared_spread

    linear = LinearKernel("log_loss", 10)
    assert [spread(linear, n) for n in (1, 2, 4)] == [0.0, 3.0, 7.0]
    assert spread(linear, 2, significance=0.5) == 0.0
    assert spread(FactorizationKernel(n_users=3, n_items=3, n_components=2), 2) == 0.0


@pytest.mark.parametrize(
    "n_workers, batches_per_worker, expected",
    [(1, 1000, 64), (2, 1000, 64), (4, 1000, 8), (8, 1000, 1), (2, 40, 5), (4, 4, 1)],
)
def test_default_runs_shorten_with_more_workers_and_less_data(
    n_workers, batches_per_worker, expected
):
    # n workers' changes of a popular row, each from the same stale row, add up: the
    # default run is 32 minibatches, at most 512 / n**3 and an eighth of a worker's epoch
    from sklearn_cirrus.kernels.linear import LinearKernel
    from sklearn_cirrus.runtime.trainers import ReplicaTrainer, make_trainer

    kernel, store = LinearKernel(n_features=10, loss="log_loss"), _ReplicaStore()
    n_samples = batches_per_worker * 256 * n_workers
    trainer = make_trainer(kernel, store, 256, None, n_workers, n_samples)
    assert isinstance(trainer, ReplicaTrainer) and trainer.exchange_every == expected
    explicit = make_trainer(kernel, store, 256, 100, 8, 4 * 256 * 8)
    assert explicit.exchange_every == 100  # what the fit says is kept


def test_a_process_keeps_the_replicas_of_one_model_only():
    # the next invocation of a model in a process starts from the replicas the last
    # left; an invocation for another model (or the model written anew) drops them
    from sklearn_cirrus.runtime.trainers import _KeptReplicas

    kept, first, second = _KeptReplicas(), {"w": "replica 1"}, {"w": "replica 2"}
    assert kept.take("a") is None
    kept.give_back("a", first)
    kept.give_back("a", second)  # (two workers' threads in one process)
    assert {kept.take("a")["w"], kept.take("a")["w"]} == {"replica 1", "replica 2"}
    assert kept.take("a") is None
    kept.give_back("a", first)
    assert kept.take("b") is None
    kept.give_back("a", first)  # an invocation of the old model ending late: not kept
    assert kept.take("b") is None and kept.model == "b"


def test_default_runs_start_short_while_the_model_is_young():
    # a young model's steps are its largest: by default a run is at most a quarter of
    # the samples the model has seen, 4 minibatches at least; a run the fit names is kept
    from types import SimpleNamespace

    from sklearn_cirrus.kernels.factorization import FactorizationKernel
    from sklearn_cirrus.model_table.optimizers import META_SIZE, T_SLOT
    from sklearn_cirrus.runtime.trainers import make_trainer

    kernel = FactorizationKernel(n_users=10, n_items=10, n_components=2)

    def run_at(trainer, seen):
        meta = np.zeros(META_SIZE)
        meta[T_SLOT] = seen
        trainer.replicas = {"users": SimpleNamespace(table=SimpleNamespace(meta=meta))}
        return trainer._run_minibatches()

    default = make_trainer(kernel, _ReplicaStore(), 512, None, 2, 80_000)
    runs = [run_at(default, seen) for seen in (0, 4 * 512 * 8, 4 * 512 * 20, 10**9)]
    assert runs == [4, 8, 20, 32]
    named = make_trainer(kernel, _ReplicaStore(), 512, 32, 2, 80_000)
    assert run_at(named, 0) == 32
