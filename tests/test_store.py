"""Parameter stores: tables pulled and added to by rows, penalties read up to date, counters,
namespaces, on every store."""

import multiprocessing
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_cirrus.model_table import ModelTable, block_of
from sklearn_cirrus.model_table.optimizers import META_SIZE
from sklearn_cirrus.store import (
    MemoryStore,
    OptimizerConfig,
    SharedMemoryStore,
    make_store,
)


def make(kind, request):
    if kind == "memory":
        return MemoryStore()
    if kind == "shm":
        return SharedMemoryStore()
    from sklearn_cirrus.store.redis_store import RedisStore

    return RedisStore(request.getfixturevalue("redis_url"))


@pytest.fixture(params=["memory", "shm", "redis"])
def store(request):
    store = make(request.param, request)
    yield store
    store.delete()


def _delta(store, key, rows, rng):
    """Random deltas for every array of ``rows`` of ``key``, as a worker would send."""
    table = store.pull_table(key, rows)
    return ModelTable(
        rng.normal(size=table.params.shape),
        rng.normal(size=table.state.shape),
        rng.normal(size=table.aux.shape),
        np.array([3.0, 0.0, -0.5, 0.25]),
        table.optimizer,
    )


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
def test_add_table_adds_to_its_rows_only(store, name, rng):
    config = OptimizerConfig(name, l2=0.1, l1=0.01, penalised_rows=10)
    init = rng.normal(size=(10, 3))
    store.create("w", init, config)
    rows = np.array([7, 1, 4])  # in any order
    before = store.pull_table("w")
    delta = _delta(store, "w", rows, rng)
    store.add_table("w", rows, delta)
    after = store.pull_table("w")
    untouched = np.setdiff1d(np.arange(10), rows)
    for name_ in ("params", "state", "aux"):
        old, new, change = (getattr(t, name_) for t in (before, after, delta))
        if old.shape[0] == 0:  # plain SGD keeps no optimizer state
            continue
        np.testing.assert_array_equal(new[untouched], old[untouched])
        np.testing.assert_allclose(new[rows], old[rows] + change)
    np.testing.assert_allclose(after.meta, before.meta + delta.meta)
    assert store.samples_seen("w") == 3.0


def test_a_table_has_the_columns_its_rule_needs(store):
    store.create("sgd", np.zeros((4, 2)), OptimizerConfig("sgd"))
    store.create("l1", np.zeros((4, 2)), OptimizerConfig("adagrad", l1=0.1, penalised_rows=3))
    plain, lasso = store.pull_table("sgd"), store.pull_table("l1")
    assert plain.state.shape == (0, 2) and plain.aux.shape[1] == 0
    # the clock, then the L1 penalty applied and owed per column
    assert lasso.state.shape == (4, 2) and lasso.aux.shape == (4, 5)


def test_pull_brings_penalised_rows_up_to_date(store):
    config = OptimizerConfig("sgd", l2=0.5, penalised_rows=2)
    store.create("w", np.ones((3, 1)), config)
    # two steps of eta 0.1 went by without touching any row: each owes 0.95 ** 2
    clocks = np.zeros(4)
    clocks[2] = 2 * np.log(1 - 0.1 * 0.5)
    store.add_table(
        "w", None, ModelTable(np.zeros((3, 1)), np.zeros((0, 1)), np.zeros((3, 1)), clocks, config)
    )
    np.testing.assert_allclose(store.pull("w")[:, 0], [0.9025, 0.9025, 1.0])
    np.testing.assert_allclose(store.pull("w", np.array([2, 0]))[:, 0], [1.0, 0.9025])
    # a pull reads; the stored rows still owe their decay to whoever trains on them
    assert store.pull_table("w").params[0, 0] == 1.0
    # a row of zeros owes nothing (the pull skips its clocks)
    store.create("z", np.array([[0.0], [2.0], [1.0]]), config)
    store.add_table(
        "z", None, ModelTable(np.zeros((3, 1)), np.zeros((0, 1)), np.zeros((3, 1)), clocks, config)
    )
    np.testing.assert_allclose(store.pull("z")[:, 0], [0.0, 1.805, 1.0])


def test_scale_learning_rate_scales_the_stored_step(store):
    store.create("w", np.zeros((1, 1)), OptimizerConfig("sgd", eta0=1.0, learning_rate="adaptive"))
    store.scale_learning_rate("w", 0.2)
    store.scale_learning_rate("w", 0.5)
    assert store.pull_table("w").meta[1] == pytest.approx(0.1)


def test_resume_keeps_state_and_position(store, rng):
    config = OptimizerConfig("adagrad", eta0=0.1)
    state = rng.uniform(size=(4, 1))
    store.create("w", rng.normal(size=(4, 1)), config, state=state, samples_seen=12.0)
    np.testing.assert_array_equal(store.pull_state("w"), state)
    assert store.samples_seen("w") == 12.0


def test_counters_and_flags(store):
    assert store.get("samples") == 0 and not store.is_flag_set("stop")
    assert store.incr("samples", 5) == 5
    assert store.incr("samples") == 6
    store.set_flag("stop")
    store.set_flag("stop")
    assert store.is_flag_set("stop") and store.get("stop") == 1


def test_handle_pickles_and_reconnects(store, rng):
    store.create("w", rng.normal(size=(3, 1)), OptimizerConfig("sgd"))
    other = pickle.loads(pickle.dumps(store.handle())).connect()
    other.add_table("w", np.arange(3), ModelTable(np.ones((3, 1)), *_empty(1)))
    other.incr("n")
    np.testing.assert_allclose(store.pull("w"), other.pull("w"))
    assert store.get("n") == 1


def test_delete_removes_namespace(store):
    store.create("w", np.zeros((2, 1)), OptimizerConfig())
    store.incr("n")
    handle = store.handle()
    store.delete()
    # a worker arriving late finds nothing: no store, or no parameters in it
    with pytest.raises((ConnectionError, KeyError)):
        handle.connect().pull("w")


def test_missing_key_names_it(store):
    with pytest.raises(KeyError, match="nope"):
        store.pull("nope")


def _empty(n_cols):
    """The state, aux, meta and rule of a delta to plain-SGD parameters."""
    return np.zeros((0, n_cols)), np.zeros((0, 0)), np.zeros(META_SIZE), OptimizerConfig("sgd")


def _add_many(handle, n_adds):
    store = handle.connect()
    for _ in range(n_adds):
        store.add_table("w", np.array([0, 1, 2, 3]), ModelTable(np.ones((4, 1)), *_empty(1)))


@pytest.mark.parametrize("kind", ["shm", "redis"])
def test_concurrent_adds_from_processes_lose_nothing(kind, request):
    store = make(kind, request)
    try:
        store.create("w", np.zeros((4, 1)), OptimizerConfig("sgd", eta0=1.0))
        context = multiprocessing.get_context("forkserver")
        workers = [context.Process(target=_add_many, args=(store.handle(), 1000)) for _ in "ab"]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            assert worker.exitcode == 0
        np.testing.assert_array_equal(store.pull("w"), 2000.0)
    finally:
        store.delete()


def test_make_store_resolves_names_and_refuses_unreachable():
    assert isinstance(make_store(None, in_process=True), MemoryStore)
    shm = make_store(None, in_process=False)
    assert isinstance(shm, SharedMemoryStore)
    shm.delete()
    with pytest.raises(ValueError, match="cannot be reached"):
        make_store("memory", in_process=False)
    with pytest.raises(ValueError, match="valid stores are"):
        make_store("nosuch://x", in_process=True)


def test_unknown_optimizer_lists_valid_ones():
    with pytest.raises(ValueError, match="adagrad"):
        OptimizerConfig(name="adam")


def test_missing_redis_client_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cirrus\[redis\]'"):
        make_store("redis://127.0.0.1:1/0", in_process=False)


def test_unreachable_redis_is_a_clear_connection_error():
    from sklearn_cirrus.store.redis_store import RedisStore

    store = RedisStore("redis://:secret@127.0.0.1:1/0", retries=1)
    with pytest.raises(ConnectionError, match=r"redis://:\*\*\*@127.0.0.1:1/0 is unreachable"):
        store.create("w", np.zeros((2, 1)), OptimizerConfig())
    assert "secret" not in repr(store) and "secret" not in repr(store.handle())


def test_redis_values_are_raw_floats_with_a_ttl(redis_url):
    import redis

    from sklearn_cirrus.store.redis_store import RedisStore

    store = RedisStore(redis_url, ttl=600)
    try:
        init = np.arange(6.0).reshape(3, 2)
        store.create("w", init, OptimizerConfig())
        client = redis.Redis.from_url(redis_url)
        assert client.get(f"{store.namespace}:w:params") == init.astype("<f8").tobytes()
        assert 0 < client.ttl(f"{store.namespace}:w:params") <= 600
    finally:
        store.delete()
    assert client.keys(f"{store.namespace}:*") == []


def test_a_new_models_zeros_cost_the_link_nothing_and_read_back_as_zeros(redis_url):
    import redis

    from sklearn_cirrus.store.redis_store import RedisStore

    store = RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        init = np.arange(6.0).reshape(3, 2)
        store.create("w", init, OptimizerConfig())  # adagrad: its state starts at zeros
        store.create("zeros", np.zeros((3, 2)), OptimizerConfig())
        assert client.strlen(f"{store.namespace}:w:params") == init.nbytes
        for name in ("w:state", "zeros:params", "zeros:state"):
            assert client.strlen(f"{store.namespace}:{name}") == 0
        table = store.load_replica("w")[0]
        np.testing.assert_array_equal(table.params, init)
        np.testing.assert_array_equal(table.state, np.zeros((3, 2)))
        np.testing.assert_array_equal(store.load_replica("zeros")[0].params, np.zeros((3, 2)))
    finally:
        store.delete()


def _fit_sgd(X, y, store, **settings):
    """A classifier fitted on ``store`` for a fixed number of epochs, seeded."""
    from sklearn_cirrus import ServerlessSGDClassifier

    return ServerlessSGDClassifier(store=store, tol=None, random_state=0, **settings).fit(X, y)


def test_workers_exchange_with_redis_every_k_minibatches(redis_url, monkeypatch):
    # a fit's exchange_every reaches the workers: k times fewer scripts run in Redis,
    # and alone a worker trains the same model as with an exchange every minibatch
    # (entries in double precision: half precision rounds each run's changes)
    import redis
    from sklearn.datasets import make_classification

    from sklearn_cirrus.runtime import trainers

    monkeypatch.setattr(trainers, "ENTRY_FLOAT_BYTES", 8)
    X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    client = redis.Redis.from_url(redis_url)

    def fit(k):
        before = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        model = _fit_sgd(
            X,
            y,
            redis_url,
            executor="sequential",
            n_workers=1,
            exchange_every=k,
            batch_size=50,
            max_iter=2,
        )
        return model, client.info("commandstats")["cmdstat_evalsha"]["calls"] - before

    every_step, scripts_every_step = fit(1)
    every_ten, scripts_every_ten = fit(10)
    np.testing.assert_allclose(every_ten.coef_, every_step.coef_, rtol=1e-10)
    assert scripts_every_ten * 5 <= scripts_every_step


@pytest.mark.parametrize("float_bytes", [8, 4, 2])
@pytest.mark.parametrize("k", [1, 7])
def test_one_worker_on_redis_trains_the_model_of_the_memory_store(
    redis_url, k, float_bytes, monkeypatch
):
    # alone, a worker's replica is the model: its entries (changes at their penalty
    # clocks) rebuild in the store exactly what it trained, whatever k; in single or
    # half precision, each run's changes rounded, as near as that allows. The replica
    # is loaded once: the invocations of the next epochs start from the one the last left
    from sklearn_cirrus.datasets import make_hashed_classification
    from sklearn_cirrus.runtime import trainers

    monkeypatch.setattr(trainers, "ENTRY_FLOAT_BYTES", float_bytes)
    loads = []
    load = trainers.Replica.__init__
    monkeypatch.setattr(
        trainers.Replica,
        "__init__",
        lambda self, *args, **kwargs: loads.append(1) or load(self, *args, **kwargs),
    )
    X, y = make_hashed_classification(5000, n_features=2**14, random_state=1)

    def fit(store):
        return _fit_sgd(
            X, y, store, executor="sequential", n_workers=1, exchange_every=k, max_iter=3
        )

    remote, local = fit(redis_url).coef_, fit("memory").coef_
    # (a run's rounding moves the worker's next steps: measured 8e-8 and 1e-3 at k=1)
    atol = {8: 1e-12, 4: 1e-6, 2: 5e-3}[float_bytes]
    np.testing.assert_allclose(remote, local, rtol=0, atol=atol)
    assert (float_bytes < 8) == (np.abs(remote - local).max() > 1e-12)  # (it did round)
    assert len(loads) == 1  # three invocations, one an epoch
    assert trainers.KEPT_REPLICAS.model is None  # the fit's end dropped it


def test_workers_far_from_redis_train_the_model_they_train_near_it(redis_url, monkeypatch):
    # 2 ms added to every round trip by the benchmarks' forwarder (a function far from
    # its store): loads, exchanges (overlapping the next run's training) and folds all
    # cross it, and the model scores as on loopback
    from pathlib import Path

    from sklearn.datasets import make_classification

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _servers import latency_proxy

    X, y = make_classification(n_samples=4000, n_features=20, random_state=0)
    settings = dict(executor="threads", n_workers=2, batch_size=50, exchange_every=4)
    near = _fit_sgd(X, y, redis_url, max_iter=3, **settings)
    with latency_proxy(redis_url, round_trip_ms=2.0) as far_url:
        assert far_url != redis_url
        far = _fit_sgd(X, y, far_url, max_iter=3, **settings)
    assert far.n_iter_ == near.n_iter_ == 3
    assert abs(far.score(X, y) - near.score(X, y)) < 0.03


def test_a_significance_filter_sends_less_and_loses_no_change(redis_url, monkeypatch):
    # a worker alone, most of its changes too small to send at once (significance 1:
    # as large as the row's value in the store): they are carried and sent with the
    # row's later changes or at the end of the invocation, so the store ends with the
    # model the worker trained, from fewer bytes (in double precision, so that no
    # rounding hides a change lost)
    import redis

    from sklearn_cirrus.datasets import make_hashed_classification
    from sklearn_cirrus.runtime import trainers

    monkeypatch.setattr(trainers, "ENTRY_FLOAT_BYTES", 8)
    X, y = make_hashed_classification(5000, n_features=2**14, random_state=1)
    client = redis.Redis.from_url(redis_url)

    def fit(store, significance=None):
        received = client.info("stats")["total_net_input_bytes"]
        model = _fit_sgd(
            X,
            y,
            store,
            executor="sequential",
            n_workers=1,
            exchange_every=3,
            max_iter=3,
            significance=significance,
        )
        return model.coef_, client.info("stats")["total_net_input_bytes"] - received

    local, _ = fit("memory")
    every_change, sent_all = fit(redis_url)
    filtered, sent_filtered = fit(redis_url, significance=1.0)
    np.testing.assert_allclose(filtered, local, rtol=0, atol=1e-10)
    np.testing.assert_allclose(every_change, local, rtol=0, atol=1e-10)
    assert sent_filtered < 0.8 * sent_all


@pytest.mark.parametrize("significance", [None, 0.5])
def test_workers_on_redis_replicas_fold_the_log_and_match_shared_memory(redis_url, significance):
    # two workers on a small dense model: every entry holds the whole model, so the log
    # is folded into the base at almost every exchange and a worker often finds its
    # place folded away (it reads the recent entries rather than the whole model, or
    # loads it anew, its unsent changes then carried over); the model still scores as
    # the shared-memory one does
    import redis
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=4000, n_features=20, random_state=0)
    client = redis.Redis.from_url(redis_url)
    folds = client.info("commandstats").get("cmdstat_copy", {}).get("calls", 0)  # one a fold

    def fit(store):
        settings = dict(executor="threads", n_workers=2, batch_size=50, exchange_every=2)
        return _fit_sgd(X, y, store, max_iter=6, significance=significance, **settings)

    remote, local = fit(redis_url), fit("shm")
    assert client.info("commandstats")["cmdstat_copy"]["calls"] > folds + 10
    assert abs(remote.score(X, y) - local.score(X, y)) < 0.03
    np.testing.assert_allclose(remote.coef_, local.coef_, rtol=0.3, atol=0.05)


def _entry(value: float) -> bytes:
    """A log entry that adds ``value`` to row 0 of a one-column table."""
    from sklearn_cirrus.store.delta_log import DeltaEntry

    rows = np.array([0])
    return DeltaEntry(rows, np.full((1, 1), value), *np.zeros((2, 1, 0)), None).to_bytes()


def _values(answer) -> list[float]:
    """What the entries an exchange brought back add to row 0."""
    from sklearn_cirrus.store.delta_log import DeltaEntry

    return [DeltaEntry.from_bytes(blob).params[0, 0] for blob in answer.entries]


def test_redis_exchanges_return_the_others_entries_once_across_folds(redis_url):
    # workers on separate connections: an exchange brings back the entries the others
    # appended since the caller's cursor, never its own; one caller at a time is told to
    # fold; after a fold a worker just behind reads the entries moved aside, and one
    # further behind is told to load the model anew
    from sklearn_cirrus.store.redis_store import RedisStore

    one = RedisStore(redis_url)
    two, late = (RedisStore(redis_url, namespace=one.namespace) for _ in range(2))
    entry, values, no_steps = _entry, _values, np.zeros(META_SIZE)
    try:
        one.create("w", np.zeros((2, 1)), OptimizerConfig())
        size = len(entry(1.0))
        first = one.exchange("w", entry(1.0), no_steps, cursor=0, fold_at=size)
        assert (first.entries, first.end, first.fold) == ([], 1, False)
        second = two.exchange("w", entry(2.0), no_steps, cursor=0, fold_at=size)
        assert (values(second), second.end, second.fold) == ([1.0], 2, True)
        # the claim is held until the fold: nobody else is told to
        assert not one.exchange("w", b"", no_steps, cursor=1, fold_at=size).fold
        replica, end = two.load_replica("w")
        assert end == 2 and replica.params[0, 0] == 3.0
        assert two.fold("w", replica, folded=0, end=2)
        third = two.exchange("w", entry(4.0), no_steps, cursor=2, fold_at=size)
        assert (third.folded, third.entries, third.end) == (2, [], 3)
        # one last heard before the fold: its own place, 1, was folded, and the entries
        # from there come from the list of folded ones and the log
        assert values(one.exchange("w", entry(8.0), no_steps, cursor=1)) == [2.0, 4.0]
        assert values(late.exchange("w", b"", no_steps, cursor=0)) == [1.0, 2.0, 4.0, 8.0]
        replica, end = one.load_replica("w")
        assert end == 4 and replica.params[0, 0] == 15.0
        assert one.fold("w", replica, folded=2, end=4)
        assert not two.fold("w", replica, folded=2, end=4)  # (that fold came first)
        assert late.exchange("w", b"", no_steps, cursor=1).entries is None  # too far back
        assert values(late.exchange("w", b"", no_steps, cursor=2)) == [4.0, 8.0]
    finally:
        one.delete()


def test_the_stores_of_a_process_reuse_its_redis_connections(redis_url):
    # a worker process's invocations one after another: the second store opens no
    # connection (a new one costs three round trips), and closing a store leaves the
    # process's connections open for the next
    import redis

    from sklearn_cirrus.store.redis_store import RedisStore

    server = redis.Redis.from_url(redis_url)
    first = RedisStore(redis_url)
    try:
        first.create("w", np.zeros((2, 1)), OptimizerConfig())
        first.close()
        connections = {client["id"] for client in server.client_list()}
        second = RedisStore(redis_url, namespace=first.namespace)
        assert second.holds("w")
        second.close()
        assert {client["id"] for client in server.client_list()} == connections
    finally:
        first.delete()


def test_a_redis_exchange_of_several_keys_is_one_transaction(redis_url):
    # a model of two keys (matrix factorization's users and items) exchanges both in
    # one round trip: each key's answer is the one a single exchange gives, and the
    # server ran one transaction
    import redis

    from sklearn_cirrus.store.redis_store import RedisStore

    one = RedisStore(redis_url)
    two = RedisStore(redis_url, namespace=one.namespace)
    client, no_steps = redis.Redis.from_url(redis_url), np.zeros(META_SIZE)
    try:
        for key in ("users", "items"):
            one.create(key, np.zeros((2, 1)), OptimizerConfig())
        one.exchange_keys(
            {"users": (_entry(1.0), no_steps, 0, 0), "items": (_entry(2.0), no_steps, 0, 0)}
        )
        # (a connection that has not heard the fold counts reads them first)
        heard = two.exchange_keys({key: (b"", no_steps, 0, 0) for key in ("users", "items")})
        assert [_values(answer) for answer in heard.values()] == [[1.0], [2.0]]
        one.exchange_keys({"users": (_entry(8.0), no_steps, 1, 0)})
        transactions = client.info("commandstats")["cmdstat_exec"]["calls"]
        answers = two.exchange_keys(
            {"users": (_entry(4.0), no_steps, 1, 0), "items": (b"", no_steps, 1, 0)}
        )
        assert client.info("commandstats")["cmdstat_exec"]["calls"] == transactions + 1
        assert (_values(answers["users"]), answers["users"].end) == ([8.0], 3)
        assert (_values(answers["items"]), answers["items"].end) == ([], 1)
        assert two.load_replica("users")[0].params[0, 0] == 13.0
    finally:
        one.delete()


def test_the_ray_actor_keeps_entries_until_a_worker_folds_them():
    # as Redis: the actor keeps the entries (for the others, and for the worker it
    # tells to fold them into its table by sending its replica) rather than apply each
    # itself; a read of the table applies what it lacks, and a fold told before that
    # read, which would undo those entries, is refused
    from sklearn_cirrus.store.ray_actor import _StoreActor

    actor, no_steps = _StoreActor(), np.zeros(META_SIZE)
    actor.call("create", "w", np.zeros((100, 1)), OptimizerConfig())  # (it keeps 2 models' worth)
    size = len(_entry(1.0))
    first = actor.exchange("w", _entry(1.0), no_steps, 0, size)
    assert (first.entries, first.end, first.fold) == ([], 1, False)
    second = actor.exchange("w", _entry(2.0), no_steps, 0, size)
    assert (_values(second), second.end, second.fold) == ([1.0], 2, True)
    assert not actor.exchange("w", b"", no_steps, 1, size).fold  # one worker is told
    assert actor.store.table("w").params[0, 0] == 0.0  # not applied by the actor
    replica = np.zeros_like(block_of(actor.store.table("w")))
    replica[0, 0] = 3.0  # the told worker's replica: both entries applied
    assert actor.fold("w", replica, folded=0, end=2)
    third = actor.exchange("w", _entry(4.0), no_steps, 2, size)
    assert (third.folded, third.entries, third.end) == (2, [], 3)
    assert _values(actor.exchange("w", b"", no_steps, 0, size)) == [1.0, 2.0, 4.0]
    assert actor.call("pull", "w")[0, 0] == 7.0  # a read applies what the table lacks
    assert not actor.fold("w", replica, folded=2, end=3)
    assert actor.call("pull", "w")[0, 0] == 7.0


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory):
    """A redis-server of its own that requires the password "right"."""
    from conftest import redis_server

    with redis_server(tmp_path_factory.mktemp("auth"), "--requirepass", "right") as port:
        yield port


@pytest.fixture(scope="module")
def redis_over_tls(tmp_path_factory):
    """A redis-server of its own that speaks TLS only, with a self-signed certificate
    for 127.0.0.1: its port and the certificate's path."""
    import subprocess

    from conftest import redis_server, require_server

    folder = tmp_path_factory.mktemp("tls")
    openssl = require_server("openssl", "apt-get install openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    options = ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    options += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    with redis_server(folder, *options, tls=True) as port:
        yield port, cert


def test_a_fit_over_tls_trains(redis_over_tls):
    from sklearn_cirrus import ServerlessSGDClassifier

    port, cert = redis_over_tls
    X = np.random.RandomState(0).normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    model = ServerlessSGDClassifier(executor="sequential", n_workers=1, store=url, max_iter=5)
    model.fit(X, y)
    assert model.score(X, y) > 0.85  # chance is 0.5


@pytest.mark.parametrize(
    "server, said",
    [("untrusted certificate", "certificate verify failed"), ("plain port", "serving TLS")],
)
def test_tls_failures_are_named_in_seconds_not_retried(
    redis_over_tls, redis_url, server, said, monkeypatch
):
    import time
    from urllib.parse import urlsplit

    from sklearn_cirrus.store import redis_store
    from sklearn_cirrus.store.redis_store import RedisStore

    monkeypatch.setattr(redis_store, "CONNECT_TIMEOUT_S", 1)  # 5 s in use

    # a certificate the client was not told to trust; a port that speaks no TLS at all
    port = redis_over_tls[0] if server == "untrusted certificate" else urlsplit(redis_url).port
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match=said):
        RedisStore(f"rediss://127.0.0.1:{port}/0", retries=5).create(
            "w", np.zeros((2, 1)), OptimizerConfig()
        )
    # one try, bounded by the connect timeout; retried, the plain port took ~3 minutes
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize("userinfo", [":wrong@", ""])
def test_refused_credentials_are_named_at_once_not_retried(redis_with_password, userinfo):
    import time

    from sklearn_cirrus.store.redis_store import RedisStore

    url = f"redis://{userinfo}127.0.0.1:{redis_with_password}/0"
    started = time.perf_counter()
    with pytest.raises(PermissionError, match="refused the credentials") as refused:
        RedisStore(url, retries=5).create("w", np.zeros((2, 1)), OptimizerConfig())
    assert time.perf_counter() - started < 2.0  # five retries with backoff take longer
    assert "wrong" not in str(refused.value)


def test_a_password_from_the_environment_stays_out_of_parameters(redis_with_password, monkeypatch):
    import pickle

    from sklearn_cirrus import ServerlessSGDClassifier

    url = f"redis://127.0.0.1:{redis_with_password}/0"
    monkeypatch.setenv("SKLEARN_CIRRUS_REDIS_PASSWORD", "right")
    X = np.random.RandomState(0).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    model = ServerlessSGDClassifier(executor="sequential", n_workers=1, store=url).fit(X, y)
    assert model.score(X, y) > 0.9
    assert b"right" not in pickle.dumps(model)


def test_passwords_in_store_urls_are_hidden_in_reprs():
    from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier

    clf = ServerlessSGDClassifier(store="redis://:s3cret@host:6379/0")
    search = ServerlessGridSearchCV(clf, {"alpha": [1e-4]}, store="rediss://u:s3cret@h/0")
    for shown in (repr(clf), clf._repr_html_(), repr(search), search._repr_html_()):
        assert "s3cret" not in shown
    assert "***" in repr(ServerlessSGDClassifier(data_url="https://u:s3cret@h/data"))


@pytest.mark.parametrize(
    "given, kept",
    [
        ("redis://:s3cret@host:6379/0", "redis://host:6379/0"),
        (
            "rediss://user:s3cret@host/1?ssl_cert_reqs=none",
            "rediss://user@host/1?ssl_cert_reqs=none",
        ),
        ("redis://host:6379/0?password=s3cret&db=2", "redis://host:6379/0?db=2"),
        ("redis://:s%40cret@[::1]:6379/0", "redis://[::1]:6379/0"),
    ],
)
def test_a_password_in_a_store_url_is_set_aside(given, kept):
    from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier
    from sklearn_cirrus.credentials import password_for

    clf = ServerlessSGDClassifier(store=given)
    search = ServerlessGridSearchCV(clf, {"alpha": [1e-4]}, store=given)
    assert clf.store == kept and clf.get_params()["store"] == kept
    assert search.get_params()["store"] == kept
    assert clone(clf).store == kept
    assert password_for(kept) == ("s@cret" if "%40" in given else "s3cret")
    assert ServerlessSGDClassifier(store="shm").store == "shm"


def test_a_password_given_in_a_url_stays_out_of_fitted_pickles(redis_with_password, monkeypatch):
    import pickle

    from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier

    monkeypatch.delenv("SKLEARN_CIRRUS_REDIS_PASSWORD", raising=False)
    url = f"redis://:right@127.0.0.1:{redis_with_password}/0"
    X = np.random.RandomState(0).normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)
    # on processes: the workers, in processes of their own, connect with the password
    model = ServerlessSGDClassifier(
        executor="processes", n_workers=2, store=url, max_iter=3, tol=None, random_state=0
    ).fit(X, y)
    # trained (two asynchronous workers over 400 rows: 0.88-0.97 here; untrained, 0.5)
    assert model.score(X, y) > 0.8
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(executor="sequential", max_iter=3, tol=None),
        {"alpha": [1e-4, 1e-3]},
        cv=2,
        store=url,
    ).fit(X, y)
    assert search.best_score_ > 0.75  # (chance: 0.5)
    for fitted in (model, search):
        assert b"right" not in pickle.dumps(fitted)
        assert "right" not in repr(fitted.get_params(deep=True))


def test_running_out_of_memory_inside_the_redis_client_is_named(redis_url):
    # redis-py, short of memory for a long reply, fails on its own closed buffer; the
    # worker reports the MemoryError (an out-of-memory invocation) and what to change
    from sklearn_cirrus.store.redis_store import RedisStore

    def read_long_reply():
        try:
            raise MemoryError
        except MemoryError:
            raise ValueError("I/O operation on closed file.") from None

    store = RedisStore(redis_url)
    with pytest.raises(MemoryError, match="raise worker_memory_mb"):
        store._call(read_long_reply)
    with pytest.raises(ValueError, match="not a memory problem"):
        store._call(lambda: (_ for _ in ()).throw(ValueError("not a memory problem")))


def test_a_fit_survives_a_restart_of_its_redis_server(tmp_path, monkeypatch):
    # the server comes back empty as epoch 2 ends, with epoch 3's workers in flight: the
    # driver says so, puts the end of epoch 1 back, and the fit ends as one without
    from conftest import RedisServer
    from sklearn.datasets import make_classification

    from sklearn_cirrus import ServerlessSGDClassifier
    from sklearn_cirrus.epoch_callbacks import EpochCallback
    from sklearn_cirrus.runtime import recovery

    server = RedisServer(tmp_path)
    server.start()
    restarts = []

    class RestartAtEpoch2(EpochCallback):
        def on_epoch(self, fitted_estimator, X):
            if fitted_estimator.n_iter_ == 2 and not restarts:
                restarts.append(2)
                server.restart()

    # (every epoch saved: a fit this short saves none but its last)
    monkeypatch.setattr(recovery, "SAVE_MIN_SECONDS", 0.0)
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=0)
    params = dict(executor="threads", n_workers=2, max_iter=6, tol=None, random_state=0)
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        clean = ServerlessSGDClassifier(store=url, **params).fit(X, y)
        clf = ServerlessSGDClassifier(store=url, **params).set_callbacks(RestartAtEpoch2())
        with pytest.warns(RuntimeWarning, match="during epoch 3 .* from the end of epoch 1"):
            clf.fit(X, y)
    finally:
        server.stop()
    report = clf.fit_report_
    assert restarts == [2] and report["store_losses"] == 1
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert abs(clf.score(X, y) - clean.score(X, y)) < 0.02


def _epochs_saved(monkeypatch, write_s, save_s, epoch_s, n_epochs):
    """Which epochs an EpochSaver keeps over a fit of ``n_epochs`` epochs of
    ``epoch_s`` seconds each, on a clock where writing the starting point takes
    ``write_s`` and a save ``save_s``; and the saver."""
    from sklearn_cirrus.runtime import recovery
    from sklearn_cirrus.runtime.stopping import StopRule

    clock = [0.0]
    monkeypatch.setattr(recovery.time, "perf_counter", lambda: clock[0])

    class TimedStore(MemoryStore):
        may_lose_state = True

        def pull_table(self, key, rows=None):
            clock[0] += save_s
            return super().pull_table(key, rows)

    def write_start(store):
        clock[0] += write_s
        store.create("w", np.zeros((2, 1)), OptimizerConfig())

    rule = StopRule(tol=None, n_iter_no_change=5)
    saver = recovery.EpochSaver(TimedStore(), ["w"], write_start, rule)
    saver.write_start()
    saved = set()
    for epoch in range(1, n_epochs + 1):
        clock[0] += epoch_s
        saver.save(epoch, rule, last=epoch == n_epochs)
        saved.add(saver.saved.n_iter)
    return saved, saver


def test_epochs_are_saved_unless_saving_would_take_over_a_tenth_of_the_time(monkeypatch):
    # saving a small model on a store nearby took longer than its epochs: an epoch is
    # saved when the last save took at most a tenth of the time since it, and the
    # fit's last epoch always is; writing the starting point counts as the first save
    saved, saver = _epochs_saved(monkeypatch, write_s=0.5, save_s=1.0, epoch_s=2.0, n_epochs=30)
    # 0.5 s of writing, 5 s of epochs before the first save; 1 s of saving, then 10 s
    # of epochs before the next (0: the starting point, the only save before epoch 3)
    assert saved == {0, 3, 8, 13, 18, 23, 28, 30}
    # the fit's result is read from the last epoch's saved tables, not the store again
    saver.store.table("w").params[0, 0] = 5.0  # (the store itself is not read)
    assert saver.epoch(30).pull("w")[0, 0] == 0.0 and saver.epoch(29) is None


def test_epochs_are_saved_at_most_once_a_second(monkeypatch):
    # a small model's saves are cheap, its epochs short: a save comes a second after the
    # last at the soonest, however little it costs, and the last epoch is saved anyway
    saved, _ = _epochs_saved(monkeypatch, write_s=0.001, save_s=0.001, epoch_s=0.3, n_epochs=12)
    assert saved == {0, 4, 8, 12}


def test_a_server_that_stops_answering_is_reported_at_once_not_retried(tmp_path, monkeypatch):
    import os
    import signal
    import time

    from conftest import RedisServer

    from sklearn_cirrus.store import redis_store

    monkeypatch.setattr(redis_store, "REPLY_TIMEOUT_S", 1)  # 10 s in use
    server = RedisServer(tmp_path)
    server.start()
    try:
        store = redis_store.RedisStore(f"redis://127.0.0.1:{server.port}/0", retries=5)
        store.create("w", np.zeros((2, 1)), OptimizerConfig())
        os.kill(server.process.pid, signal.SIGSTOP)  # hung: connected, silent
        started = time.perf_counter()
        with pytest.raises(ConnectionError, match="did not answer in time"):
            store.pull("w")
        # one reply timeout; retried five times with backoff it took 6 (was 30) times that
        assert time.perf_counter() - started < 3.0
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


@pytest.mark.parametrize("last_epoch", [True, False])
def test_a_worker_folds_the_log_as_an_invocation_of_the_last_epoch_ends(monkeypatch, last_epoch):
    # the driver reads the model as the fit's last epoch ends, which would apply the
    # log first while the fit waits: that epoch's invocations ask, in their last
    # exchange, to fold a log of a quarter of the model already
    from scipy import sparse

    from sklearn_cirrus.data.batch import Batch
    from sklearn_cirrus.kernels.linear import LinearKernel
    from sklearn_cirrus.model_table import block_copy
    from sklearn_cirrus.model_table.optimizers import OptimizerConfig
    from sklearn_cirrus.runtime import trainers
    from sklearn_cirrus.runtime.report import WorkerReport
    from sklearn_cirrus.store.ray_actor import _StoreActor

    class InProcessActor:  # (the Ray actor's calls, without Ray)
        def __init__(self):
            self.actor = _StoreActor()

        def table(self, key):
            return None

        def load_replica(self, key):
            table, end = self.actor.load_replica(key)
            return block_copy(table), end

        def exchange_keys(self, requests):
            return self.actor.exchange_keys(requests)

        def fold(self, key, table, folded, end):
            return self.actor.fold(key, block_of(table), folded, end)

    monkeypatch.setattr(trainers, "FOLD_LOG_SIZE", 1000)  # (no fold while training)
    kernel = LinearKernel("log_loss", 20)
    store = InProcessActor()
    optimizer = OptimizerConfig("adagrad", eta0=0.1, l2=1e-4, penalised_rows=20)
    store.actor.call("create", "model", kernel.init_params()["model"], optimizer)
    rng = np.random.RandomState(0)
    X = sparse.random(300, 20, density=0.3, format="csr", random_state=rng)
    y = np.where(rng.uniform(size=300) < 0.5, -1.0, 1.0)
    trainer = trainers.ReplicaTrainer(
        kernel, store, batch_size=10, exchange_every=3, closing_fold=last_epoch
    )
    trainer.train(Batch(X, y, np.ones(300)), WorkerReport())
    trainer.close()
    log_end = store.actor.logs["model"].end
    assert log_end > 5  # (the runs' entries)
    assert (store.actor.folded["model"] == log_end) is last_epoch
    assert bool(store.actor.unfolded["model"]) is not last_epoch
    # either way the model read is the worker's
    model = store.actor.call("pull_table", "model")
    np.testing.assert_array_equal(model.params, trainer.replicas["model"].table.params)
