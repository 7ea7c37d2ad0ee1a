"""Parameter stores: sparse pull/push, optimizers applied on push, counters, namespaces."""

import multiprocessing
import pickle
import sys

import numpy as np
import pytest

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


def reference_updates(config, params, grads):
    """The textbook update rules, written out once, coordinate by coordinate."""
    params = params.copy()
    state = np.zeros_like(params)
    mu, eta = config.momentum, config.eta0
    for grad in grads:
        if config.name == "sgd":
            params -= eta * grad
        elif config.name == "momentum":
            state = mu * state + grad
            params -= eta * state
        elif config.name == "nesterov":
            previous = state.copy()
            state = mu * state - eta * grad
            params += -mu * previous + (1 + mu) * state
        else:
            state += grad**2
            params -= eta * grad / (np.sqrt(state) + config.adagrad_epsilon)
    return params


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad"])
def test_optimizer_applied_in_store_matches_reference(store, name, rng):
    config = OptimizerConfig(name=name, eta0=0.05)
    init = rng.normal(size=(6, 2))
    grads = [rng.normal(size=(6, 2)) for _ in range(5)]
    store.create("w", init, config)
    for grad in grads:
        store.push("w", grad)
    np.testing.assert_allclose(store.pull("w"), reference_updates(config, init, grads))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad"])
def test_sparse_push_updates_only_its_rows(store, name, rng):
    config = OptimizerConfig(name=name, eta0=0.05)
    init = rng.normal(size=(10, 3))
    store.create("w", init, config)
    rows = np.array([1, 4, 7])
    grads = [rng.normal(size=(3, 3)) for _ in range(4)]
    for grad in grads:
        store.push("w", grad, rows)
    pulled = store.pull("w")
    untouched = np.setdiff1d(np.arange(10), rows)
    np.testing.assert_array_equal(pulled[untouched], init[untouched])
    np.testing.assert_allclose(pulled[rows], reference_updates(config, init[rows], grads))
    np.testing.assert_allclose(store.pull("w", rows), pulled[rows])


def test_adagrad_state_is_per_coordinate(store):
    store.create("w", np.zeros((2, 1)), OptimizerConfig("adagrad", eta0=1.0))
    for _ in range(3):
        store.push("w", np.array([[10.0]]), rows=np.array([0]))
    store.push("w", np.array([[1.0], [1.0]]))
    state = store.pull_state("w")
    np.testing.assert_allclose(state[:, 0], [301.0, 1.0])
    # row 1 has seen one gradient: its first step is the full eta0 (sign of the gradient)
    assert store.pull("w")[1, 0] == pytest.approx(-1.0)


def test_schedules_follow_samples_pushed(store):
    config = OptimizerConfig("sgd", eta0=0.5, learning_rate="invscaling", power_t=0.5)
    store.create("w", np.zeros((1, 1)), config)
    store.push("w", np.ones((1, 1)), n_samples=3)  # step 0.5 / 1 ** 0.5
    store.push("w", np.ones((1, 1)), n_samples=1)  # step 0.5 / 4 ** 0.5
    assert store.pull("w")[0, 0] == pytest.approx(-0.75)
    assert store.samples_seen("w") == 4
    optimal = OptimizerConfig("sgd", learning_rate="optimal", alpha=0.1, optimal_init=10.0)
    store.create("v", np.zeros((1, 1)), optimal, samples_seen=10)
    store.push("v", np.ones((1, 1)))
    assert store.pull("v")[0, 0] == pytest.approx(-1.0 / (0.1 * 20.0))


def test_scale_learning_rate_divides_later_steps(store):
    store.create("w", np.zeros((1, 1)), OptimizerConfig("sgd", eta0=1.0, learning_rate="adaptive"))
    store.scale_learning_rate("w", 0.2)
    store.push("w", np.ones((1, 1)))
    assert store.pull("w")[0, 0] == pytest.approx(-0.2)


def test_resume_from_saved_state(store, rng):
    config = OptimizerConfig("adagrad", eta0=0.1)
    init = rng.normal(size=(4, 1))
    grads = [rng.normal(size=(4, 1)) for _ in range(4)]
    store.create("w", init, config)
    for grad in grads[:2]:
        store.push("w", grad)
    params, state = store.pull("w"), store.pull_state("w")
    store.create("w", params, config, state=state)
    for grad in grads[2:]:
        store.push("w", grad)
    np.testing.assert_allclose(store.pull("w"), reference_updates(config, init, grads))


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
    other.push("w", np.ones((3, 1)))
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


def _push_many(handle, n_pushes):
    store = handle.connect()
    for _ in range(n_pushes):
        store.push("w", np.ones((4, 1)), rows=np.array([0, 1, 2, 3]))


@pytest.mark.parametrize("kind", ["shm", "redis"])
def test_concurrent_pushes_from_processes_lose_nothing(kind, request):
    store = make(kind, request)
    try:
        store.create("w", np.zeros((4, 1)), OptimizerConfig("sgd", eta0=1.0))
        context = multiprocessing.get_context("forkserver")
        workers = [context.Process(target=_push_many, args=(store.handle(), 1000)) for _ in "ab"]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            assert worker.exitcode == 0
        np.testing.assert_array_equal(store.pull("w"), -2000.0)
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
    with pytest.raises(ImportError, match=r"pip install sklearn-cirrus\[redis\]"):
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
