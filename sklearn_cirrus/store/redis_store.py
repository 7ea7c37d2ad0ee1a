"""A parameter store on Redis, reachable by workers anywhere: ``store="redis://host:port/db"``.

Each key lives under one namespace prefix as a *base* copy, its parameters, optimizer
state and penalty columns as raw little-endian float64 strings (row-major), plus a
*log* of changes not yet folded into it: a list of binary entries
(:class:`~sklearn_cirrus.store.delta_log.DeltaEntry`), with a count of the entries
folded so far, so that a position in the log means the same before and after a fold.
The schedule position, step-size scale and penalty clocks are counters in a hash, the
update rule a JSON string. Values never travel as pickles, so a store shared by many
users is no way to run code.

Redis only moves whole strings: a worker loads a replica of the model (the base and the
log, read in one transaction), trains on it locally, and every few minibatches runs one
short script that appends its entry, adds its steps to the counters and returns the
entries the others appended since its last exchange; a worker whose share of the log
has grown past the size of the model folds it by writing its replica as the new base
(:class:`~sklearn_cirrus.runtime.trainers.ReplicaTrainer`). The entries of the last
fold are kept aside, so that a worker one exchange behind reads them rather than
loading the whole model again. No script loops over
values, so the store's single thread copies memory at its speed rather than running
Lua per element. Everything expires after ``ttl`` seconds in case the driver dies;
``delete`` removes it at the end of a fit.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import numpy as np

from ..credentials import redacted
from ..exceptions import StoreLost
from .base import ModelTable, ParameterStore, block_width, table_views
from .delta_log import DeltaEntry, Exchange, apply_entry
from .optimizers import META_NAMES, OptimizerConfig, new_meta

DEFAULT_TTL_SECONDS = 24 * 3600
# where a password not written in the store URL is read from, in the driver and workers
PASSWORD_VARIABLE = "SKLEARN_CIRRUS_REDIS_PASSWORD"
# seconds to connect, and without a byte of a reply (not for a whole reply: a large model
# streams on)
CONNECT_TIMEOUT_S = 5
REPLY_TIMEOUT_S = 10
ARRAYS = ("params", "state", "aux")

_EXCHANGE = """
-- KEYS: log, folded, meta, recent, config; ARGV: entry (empty: none), cursor, ttl, the
-- meta hash's counter names joined by spaces, then a value to add to each
-- a namespace without its model (a restarted server) is left as it is: no entry lands
if redis.call('EXISTS', KEYS[5]) == 0 then return redis.error_reply('STORELOST') end
local folded = tonumber(redis.call('GET', KEYS[2]) or '0')
local length
if #ARGV[1] > 0 then
  length = redis.call('RPUSH', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
else
  length = redis.call('LLEN', KEYS[1])
end
local names = {}
for name in string.gmatch(ARGV[4], '%S+') do names[#names + 1] = name end
for i, name in ipairs(names) do
  if tonumber(ARGV[4 + i]) ~= 0 then redis.call('HINCRBYFLOAT', KEYS[3], name, ARGV[4 + i]) end
end
local meta = redis.call('HMGET', KEYS[3], unpack(names))
local start = tonumber(ARGV[2]) - folded
if start >= 0 then
  return {folded, length, meta, 1, redis.call('LRANGE', KEYS[1], start, -1)}
end
-- folded past the cursor: the entries of the last fold are kept for those just behind
local recent = folded - redis.call('LLEN', KEYS[4])
if tonumber(ARGV[2]) < recent then return {folded, length, meta, 0, {}} end
local entries = redis.call('LRANGE', KEYS[4], tonumber(ARGV[2]) - recent, -1)
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do entries[#entries + 1] = entry end
return {folded, length, meta, 1, entries}
"""

_FOLD = """
-- KEYS: log, folded, recent, config, then the base arrays; ARGV: folded as the caller
-- saw it, entries it folded, ttl, then the arrays' new values
if redis.call('EXISTS', KEYS[4]) == 0 then return redis.error_reply('STORELOST') end
redis.call('EXPIRE', KEYS[4], ARGV[3])
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return 0 end
for i = 5, #KEYS do redis.call('SET', KEYS[i], ARGV[i - 1], 'EX', ARGV[3]) end
-- the folded entries move (not copied) to the list of recent ones, which a worker one
-- exchange behind reads rather than loading the whole model again
redis.call('DEL', KEYS[3])
for _ = 1, tonumber(ARGV[2]) do redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT') end
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('SET', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), 'EX', ARGV[3])
return 1
"""


class _NotRetried(Exception):
    def __init__(self, error: Exception):
        self.error = error


def _retry_but_not_refusals(retry_class, refusals: tuple):
    """redis-py's Retry, but a refused password or permission is raised at once: it is
    a ConnectionError to redis-py, and trying again cannot change the answer."""

    class RetryButNotRefusals(retry_class):
        def call_with_retry(self, do, fail, *args, **kwargs):
            def attempt():
                try:
                    return do()
                except refusals as exc:
                    raise _NotRetried(exc) from None

            try:
                return super().call_with_retry(attempt, fail, *args, **kwargs)
            except _NotRetried as refused:
                raise refused.error from None

    return RetryButNotRefusals


class TLSFailure(Exception):
    """The TLS handshake with the store failed (not an OSError, so that redis-py does
    not turn it into a ConnectionError it retries)."""


def _bounded_tls_connection(ssl_connection):
    """redis-py's SSLConnection, its handshake bounded by the connect timeout and its
    failures raised as TLSFailure: pointed at a plain port, a TLS client otherwise waits
    the whole reply timeout per try for an answer that never comes."""
    import ssl

    class BoundedTLSConnection(ssl_connection):
        def _wrap_socket_with_ssl(self, sock):
            sock.settimeout(self.socket_connect_timeout)
            try:
                wrapped = super()._wrap_socket_with_ssl(sock)
            except TimeoutError:
                sock.close()
                raise TLSFailure(
                    f"no TLS handshake within {self.socket_connect_timeout} s: is the port "
                    "serving TLS? (rediss:// needs a TLS port, redis:// is plain)"
                ) from None
            except ssl.SSLError as exc:
                sock.close()
                raise TLSFailure(f"TLS handshake failed: {exc}") from None
            wrapped.settimeout(self.socket_timeout)
            return wrapped

    return BoundedTLSConnection


def _caused_by_memory(error: BaseException) -> bool:
    while error is not None:
        if isinstance(error, MemoryError):
            return True
        error = error.__cause__ or error.__context__
    return False


@dataclass(frozen=True)
class RedisStoreHandle:
    url: str
    namespace: str
    ttl: int = DEFAULT_TTL_SECONDS

    def connect(self) -> RedisStore:
        return RedisStore(self.url, namespace=self.namespace, ttl=self.ttl)

    def __repr__(self) -> str:
        return f"RedisStoreHandle({redacted(self.url)!r}, {self.namespace!r})"


class RedisStore(ParameterStore):
    """Parameters in Redis, updated atomically by Lua scripts (see module doc).

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db`` or ``rediss://`` for TLS.
    namespace : str or None
        Prefix of every key of this store; a fresh one when None.
    ttl : int
        Seconds after which everything expires if ``delete`` is never called.
    retries : int
        Reconnection attempts, with exponential backoff, before a lost connection is
        raised as ``ConnectionError``. A server that accepts no connection within
        ``CONNECT_TIMEOUT_S`` or sends nothing of a reply for ``REPLY_TIMEOUT_S`` (hung,
        or stopped) is reported at once, not tried again.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str | None = None,
        ttl: int = DEFAULT_TTL_SECONDS,
        retries: int = 5,
    ):
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError:
            raise ImportError(
                "store='redis://...' needs the redis client: pip install sklearn-cirrus[redis]"
            ) from None
        self.url = url
        options = {}  # for redis-py's client, beyond the URL's
        self.namespace = namespace or f"cirrus:{uuid.uuid4().hex}"
        self.ttl = ttl
        self._lost_connection = redis.ConnectionError
        self._timeout = redis.TimeoutError
        self._response_error = redis.ResponseError
        self._refusals = (
            redis.AuthenticationError,
            redis.exceptions.NoPermissionError,
            TLSFailure,
        )
        if urlsplit(url).scheme == "rediss":
            options["connection_class"] = _bounded_tls_connection(redis.SSLConnection)
        # a password kept out of the URL (and so out of pickles and parameters)
        password = None
        if urlsplit(url).password is None:
            password = os.environ.get(PASSWORD_VARIABLE)
        if password:
            options["password"] = password
        self._client = redis.Redis.from_url(
            url,
            **options,
            # a lost connection is tried again; a server that does not answer is not
            # (nothing here makes it busy for seconds): every failure is told in seconds
            retry=_retry_but_not_refusals(Retry, self._refusals)(
                ExponentialBackoff(cap=2.0, base=0.05),
                retries,
                supported_errors=(self._lost_connection,),
            ),
            retry_on_error=[self._lost_connection],
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
        )
        self._exchange_script = self._client.register_script(_EXCHANGE)
        self._fold_script = self._client.register_script(_FOLD)
        # key -> (optimizer, n_rows, n_cols), read once per connection
        self._configs: dict[str, tuple[OptimizerConfig, int, int]] = {}

    def __repr__(self) -> str:
        return f"RedisStore({redacted(self.url)!r}, namespace={self.namespace!r})"

    def _name(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except TLSFailure as exc:
            raise ConnectionError(f"parameter store {redacted(self.url)}: {exc}") from None
        except self._refusals as exc:
            raise PermissionError(
                f"parameter store {redacted(self.url)} refused the credentials: {exc}"
            ) from None
        except self._response_error as exc:
            if not str(exc).startswith("STORELOST"):
                raise
            raise self._lost() from None
        except self._timeout as exc:
            raise ConnectionError(
                f"parameter store {redacted(self.url)} did not answer in time ({exc}; "
                f"{CONNECT_TIMEOUT_S} s to connect, {REPLY_TIMEOUT_S} s for a reply): "
                "hung, stopped or overloaded?"
            ) from exc
        except self._lost_connection as exc:
            raise ConnectionError(
                f"parameter store {redacted(self.url)} is unreachable: {exc}"
            ) from exc
        except Exception as exc:
            # redis-py meets a MemoryError while reading a long reply, then fails on its
            # own buffer ("I/O operation on closed file"): name the real cause
            if not _caused_by_memory(exc):
                raise
            raise MemoryError(
                f"out of memory reading from parameter store {redacted(self.url)}: a "
                "worker holds the model and the store's log of changes; raise "
                "worker_memory_mb"
            ) from exc

    def _config(self, key: str) -> tuple[OptimizerConfig, int, int]:
        if key not in self._configs:
            raw = self._call(self._client.get, self._name(key, "config"))
            if raw is None:
                raise self._lost(key)
            spec = json.loads(raw)
            self._configs[key] = (OptimizerConfig(**spec["optimizer"]), *spec["shape"])
        return self._configs[key]

    def create(self, key, init, optimizer, state=None, samples_seen=0.0):
        init = np.asarray(init, dtype="<f8")
        if init.ndim != 2:
            raise ValueError(f"parameters must be 2-D, got shape {init.shape}")
        self._configs[key] = (optimizer, *init.shape)
        arrays = {"params": init}
        if optimizer.has_state:
            arrays["state"] = np.zeros_like(init) if state is None else np.asarray(state, "<f8")
        if self._widths(key)["aux"]:
            arrays["aux"] = np.zeros((init.shape[0], self._widths(key)["aux"]))
        self._write(key, optimizer, arrays, new_meta(samples_seen))

    # the store can lose a model (a server restarted without persistence): the driver
    # keeps each epoch's tables (pull_table) and puts them back with restore
    may_lose_state = True

    def restore(self, key: str, table: ModelTable) -> None:
        """Put back ``table`` (read with ``pull_table``): its parameters, optimizer state,
        penalty columns and counters, as they were."""
        self._configs[key] = (table.optimizer, *table.params.shape)
        arrays = {name: getattr(table, name) for name, width in self._widths(key).items() if width}
        self._write(key, table.optimizer, arrays, table.meta)

    def _write(self, key, optimizer, arrays: dict[str, np.ndarray], meta: np.ndarray) -> None:
        spec = {"optimizer": asdict(optimizer), "shape": arrays["params"].shape}
        pipe = self._client.pipeline(transaction=True)
        for name, values in arrays.items():
            pipe.set(
                self._name(key, name), np.ascontiguousarray(values, "<f8").tobytes(), ex=self.ttl
            )
        pipe.delete(self._name(key, "log"), self._name(key, "recent"), self._name(key, "meta"))
        pipe.set(self._name(key, "folded"), 0, ex=self.ttl)
        values = [float(value) for value in meta]  # floats, not numpy scalars, on the wire
        pipe.hset(self._name(key, "meta"), mapping=dict(zip(META_NAMES, values, strict=True)))
        pipe.expire(self._name(key, "meta"), self.ttl)
        pipe.set(self._name(key, "config"), json.dumps(spec), ex=self.ttl)
        self._call(pipe.execute)

    def holds(self, key: str) -> bool:
        return bool(self._call(self._client.exists, self._name(key, "config")))

    def _lost(self, key: str | None = None) -> StoreLost:
        what = "the model" if key is None else f"parameters {key!r}"
        return StoreLost(
            f"parameter store {redacted(self.url)} no longer holds {what} of namespace "
            f"{self.namespace!r}: was its server restarted, or the keys evicted or expired?"
        )

    def optimizer(self, key):
        return self._config(key)[0]

    def _widths(self, key) -> dict[str, int]:
        """Columns of each array of ``key``; arrays of no columns are not stored."""
        config, _, n_cols = self._config(key)
        return {
            "params": n_cols,
            "state": n_cols if config.has_state else 0,
            "aux": config.aux_width(n_cols),
        }

    def load_replica(self, key: str) -> tuple[ModelTable, int]:
        """The whole model as it stands (the base with the log folded in) and the log
        position it includes, read in one transaction."""
        config, n_rows, n_cols = self._config(key)
        pipe = self._client.pipeline(transaction=True)
        for name in ARRAYS:
            pipe.get(self._name(key, name))
        pipe.hmget(self._name(key, "meta"), META_NAMES)
        pipe.get(self._name(key, "folded"))
        pipe.lrange(self._name(key, "log"), 0, -1)
        *blobs, meta, folded, entries = self._call(pipe.execute)
        if blobs[0] is None:
            raise self._lost(key)
        # one block, as the local stores keep it (a row's values share a cache line)
        block = np.empty((n_rows, block_width(n_cols, config)))
        table = table_views(block, n_cols, config, np.array(meta, dtype=float))
        for name, blob in zip(ARRAYS, blobs, strict=True):
            array = getattr(table, name)
            if array.size:
                array[...] = np.frombuffer(blob, "<f8").reshape(array.shape)
        for entry in entries:
            apply_entry(table, DeltaEntry.from_bytes(entry))
        return table, int(folded or 0) + len(entries)

    def exchange(self, key: str, entry: bytes, meta_change: np.ndarray, cursor: int) -> Exchange:
        """Append ``entry`` (nothing if empty) to the log of ``key`` and add
        ``meta_change`` to its counters, then read the counters and the entries from
        position ``cursor`` on (the appended one last): one round trip, atomic."""
        self._config(key)
        answer = self._call(
            self._exchange_script,
            keys=[
                self._name(key, "log"),
                self._name(key, "folded"),
                self._name(key, "meta"),
                self._name(key, "recent"),
                self._name(key, "config"),
            ],
            args=[entry, cursor, self.ttl, " ".join(META_NAMES), *map(repr, meta_change.tolist())],
        )
        folded, length, meta, complete, entries = answer
        return Exchange(
            int(folded),
            int(folded) + int(length),
            np.array(meta, dtype=float),
            list(entries) if complete else None,
        )

    def fold(self, key: str, table: ModelTable, folded: int, end: int) -> bool:
        """Make ``table`` (a replica that includes the log up to ``end``) the base of
        ``key`` and drop those entries, unless another fold came first: whether it did."""
        names = [name for name, width in self._widths(key).items() if width]
        values = [np.ascontiguousarray(getattr(table, name), "<f8").tobytes() for name in names]
        keys = [self._name(key, part) for part in ("log", "folded", "recent", "config")]
        done = self._call(
            self._fold_script,
            keys=keys + [self._name(key, name) for name in names],
            args=[folded, end - folded, self.ttl, *values],
        )
        return bool(done)

    def _pull_params(self, key, rows):
        params = self.load_replica(key)[0].params
        return params if rows is None else params[rows]

    def pull_table(self, key, rows=None):
        table = self.load_replica(key)[0]
        if rows is None:
            return table
        index = np.asarray(rows)

        def pick(array):  # (an array of no rows, as plain SGD's state, stays so)
            return array[index] if array.shape[0] else array

        return ModelTable(
            pick(table.params), pick(table.state), pick(table.aux), table.meta, table.optimizer
        )

    def add_table(self, key, rows, delta):
        n_rows = self._config(key)[1]
        rows = np.arange(n_rows) if rows is None else np.asarray(rows)
        state = delta.state if delta.state.shape[0] else np.zeros((rows.size, 0))
        aux = delta.aux if delta.aux.shape[0] else np.zeros((rows.size, 0))
        entry = DeltaEntry(rows, delta.params, state, aux, clocks=None)
        # (a cursor before the log's start: nothing read back)
        self.exchange(key, entry.to_bytes(), np.asarray(delta.meta, dtype=float), cursor=-1)

    def pull_state(self, key):
        table = self.load_replica(key)[0]
        return table.state if table.optimizer.has_state else None

    def samples_seen(self, key):
        self._config(key)
        seen = self._call(self._client.hget, self._name(key, "meta"), "t")
        if seen is None:
            raise self._lost(key)
        return float(seen)

    def scale_learning_rate(self, key, factor):
        self._config(key)
        meta = self._name(key, "meta")
        scale = float(self._call(self._client.hget, meta, "eta_scale")) * factor
        self._call(self._client.hset, meta, "eta_scale", repr(scale))

    def incr(self, name, amount=1.0):
        counter = self._name("counter", name)
        pipe = self._client.pipeline(transaction=True)
        pipe.incrbyfloat(counter, amount)
        pipe.expire(counter, self.ttl)
        return float(self._call(pipe.execute)[0])

    def get(self, name):
        value = self._call(self._client.get, self._name("counter", name))
        return 0.0 if value is None else float(value)

    def delete(self):
        pattern = f"{self.namespace}:*"
        keys = self._call(lambda: list(self._client.scan_iter(match=pattern, count=1000)))
        if keys:
            self._call(self._client.unlink, *keys)
        self._configs.clear()

    def handle(self):
        return RedisStoreHandle(self.url, self.namespace, self.ttl)

    def close(self):
        self._client.close()
