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
log, read in one transaction), trains on it locally, and every few minibatches sends one
transaction that appends its entry, adds its steps to the counters and reads the entries
the others appended since its last exchange. When the log has grown past the size of the
model, the store tells one worker to fold it, by writing its replica as the new base
(:class:`~sklearn_cirrus.runtime.trainers.ReplicaTrainer`). The entries of the last
fold are kept aside, so that a worker one exchange behind reads them rather than
loading the whole model again. Entries and arrays never pass through a Lua script (Redis
hashes every byte of a string handed to Lua), and no script loops over values, so the
store's single thread copies memory at its speed. ``delete`` removes everything at the
end of a fit; a fit whose driver was killed is removed by the next one or by
``sklearn-cirrus cleanup --store`` (:mod:`~sklearn_cirrus.store.redis_owners`), and
everything expires after ``ttl`` seconds in any case.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import numpy as np

from .._extras import require
from ..credentials import password_for, redacted
from ..exceptions import StoreLost
from ..model_table import (
    META_NAMES,
    ModelTable,
    OptimizerConfig,
    block_width,
    new_meta,
    table_views,
)
from .base import ParameterStore
from .delta_log import FOLD_CLAIM_SECONDS, DeltaEntry, Exchange, apply_entry
from .redis_owners import Heartbeat, Leftover, forget_owner, record_owner
from .redis_owners import leftovers as leftovers_of
from .redis_owners import remove_leftovers as remove_leftovers_of

DEFAULT_TTL_SECONDS = 24 * 3600
# where a password not written in the store URL is read from, in the driver and workers
PASSWORD_VARIABLE = "SKLEARN_CIRRUS_REDIS_PASSWORD"
# seconds to connect, and without a byte of a reply (not for a whole reply: a large model
# streams on)
CONNECT_TIMEOUT_S = 5
REPLY_TIMEOUT_S = 10
ARRAYS = ("params", "state", "aux")
# arguments longer than this are sent as they are, not copied into the command's buffer
# (redis-py's own cutoff)
PACKING_CUTOFF_BYTES = 6000

# this process's connections, by server and settings: the invocations a worker process
# runs one after another reuse them (a new connection costs redis-py three round trips
# and a look-up of its own version, 2 ms an invocation on ml-latest-small: 7% of a
# worker's time). A store's ``close`` leaves them open.
_POOLS: dict[tuple, object] = {}
_POOLS_LOCK = threading.Lock()

# Scripts see no entry and no model: Redis's Lua hashes every byte of every string it
# is handed, which was a third of the server's time when entries went through them.
_COUNT = """
-- KEYS: config, meta, folded, log sizes, fold claim; ARGV: the log's bytes from which the
-- caller may fold it (0: never), the meta hash's counter names joined by spaces, then a
-- value to add to each
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STORELOST') end
local names = {}
for name in string.gmatch(ARGV[2], '%S+') do names[#names + 1] = name end
for i, name in ipairs(names) do
  if tonumber(ARGV[2 + i]) ~= 0 then redis.call('HINCRBYFLOAT', KEYS[2], name, ARGV[2 + i]) end
end
local meta = redis.call('HMGET', KEYS[2], unpack(names))
-- one caller at a time is told to fold a log grown past its size (the claim expires,
-- should that worker die before its fold)
local fold = 0
local fold_at = tonumber(ARGV[1])
if fold_at > 0 then
  local bytes = 0
  for _, size in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do bytes = bytes + tonumber(size) end
  if bytes > fold_at and redis.call('SET', KEYS[5], '1', 'NX', 'EX', FOLD_CLAIM_SECONDS) then
    fold = 1
  end
end
return {tonumber(redis.call('GET', KEYS[3]) or '0'), meta, fold}
""".replace("FOLD_CLAIM_SECONDS", str(FOLD_CLAIM_SECONDS))


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
    # the password set aside in the driver's process, for workers of this fit elsewhere
    password: str | None = field(default=None, repr=False)

    def connect(self) -> RedisStore:
        return RedisStore(self.url, namespace=self.namespace, ttl=self.ttl, password=self.password)

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
        password: str | None = None,
    ):
        redis = require("redis", what="store='redis://...'", extra="redis")
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.url = url
        # for redis-py's client, beyond the URL's. Commands are packed in Python:
        # hiredis's packer copies a command's arguments into one buffer, which took
        # 4-13 ms for the 3.7 MB of a fold's array where the Python one sends large
        # arguments as they are (0.8-2.8 ms)
        options = {
            "command_packer": redis.connection.PythonRespSerializer(
                PACKING_CUTOFF_BYTES, redis.connection.Encoder("utf-8", "strict", False).encode
            )
        }
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
        # a password kept out of the URL (and so out of pickles and parameters): given
        # with the address, set aside in this process, or in the environment
        if password is None and urlsplit(url).password is None:
            password = password_for(url) or os.environ.get(PASSWORD_VARIABLE)
        self._password = password
        if password:
            options["password"] = password
        settings = (url, password, retries, CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S)
        with _POOLS_LOCK:
            if settings not in _POOLS:
                _POOLS[settings] = redis.ConnectionPool.from_url(
                    url,
                    **options,
                    # a lost connection is tried again; a server that does not answer is
                    # not (nothing here makes it busy for seconds): every failure is
                    # told in seconds
                    retry=_retry_but_not_refusals(Retry, self._refusals)(
                        ExponentialBackoff(cap=2.0, base=0.05),
                        retries,
                        supported_errors=(self._lost_connection,),
                    ),
                    retry_on_error=[self._lost_connection],
                    socket_connect_timeout=CONNECT_TIMEOUT_S,
                    socket_timeout=REPLY_TIMEOUT_S,
                )
            self._client = redis.Redis(connection_pool=_POOLS[settings])
        # the count script's SHA1 once loaded (once a store, so once an invocation:
        # redis-py's scripts in a pipeline ask the server whether it knows them at every
        # exchange, a round trip more each)
        self._count_sha: str | None = None
        self._no_script = redis.exceptions.NoScriptError
        self._watch_error = redis.WatchError
        # key -> entries folded into the base, as this store last heard
        self._folded: dict[str, int] = {}
        # key -> (optimizer, n_rows, n_cols), read once per connection
        self._configs: dict[str, tuple[OptimizerConfig, int, int]] = {}
        self._heartbeat: Heartbeat | None = None

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
            if "DB index is out of range" in str(exc):
                raise ValueError(
                    f"parameter store {redacted(self.url)}: the server has no database "
                    f"{urlsplit(self.url).path.strip('/')} (DB index is out of range: its "
                    "'databases' setting says how many it has, 16 unless set)"
                ) from None
            if "STORELOST" not in str(exc):  # (inside a transaction, told after its place)
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
            # an array of zeros (a new model's, but for random factors) is written as no
            # bytes: on a slow link, a 2**20-row model's 25 MB are 0.4 s for the driver
            # that creates it and again for every worker's first load
            blob = np.ascontiguousarray(values, "<f8").tobytes() if np.any(values) else b""
            pipe.set(self._name(key, name), blob, ex=self.ttl)
        parts = ("log", "recent", "meta", "log_sizes", "fold_claim")
        pipe.delete(*(self._name(key, part) for part in parts))
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
        self._folded[key] = int(folded or 0)
        # one block, as the local stores keep it (a row's values share a cache line)
        block = np.empty((n_rows, block_width(n_cols, config)))
        table = table_views(block, n_cols, config, np.array(meta, dtype=float))
        for name, blob in zip(ARRAYS, blobs, strict=True):
            array = getattr(table, name)
            if array.size:
                array[...] = np.frombuffer(blob, "<f8").reshape(array.shape) if blob else 0.0
        for entry in entries:
            apply_entry(table, entry)
        return table, int(folded or 0) + len(entries)

    def exchange(
        self, key: str, entry: bytes, meta_change: np.ndarray, cursor: int, fold_at: int = 0
    ) -> Exchange:
        """Append ``entry`` (nothing if empty) to the log of ``key`` and add
        ``meta_change`` to its counters, then read the counters and the others' entries
        from position ``cursor`` on: one round trip, atomic. With ``fold_at``, the
        answer tells one caller (not two) to fold a log past ``fold_at`` bytes."""
        return self.exchange_keys({key: (entry, meta_change, cursor, fold_at)})[key]

    def exchange_keys(
        self, requests: dict[str, tuple[bytes, np.ndarray, int, int]]
    ) -> dict[str, Exchange]:
        """``exchange`` for several keys (``key: (entry, meta_change, cursor,
        fold_at)``), in one round trip and one transaction."""
        if self._count_sha is None:
            self._count_sha = self._call(self._client.script_load, _COUNT)
        pipe = self._client.pipeline(transaction=True)
        # entries folded, as this store last heard (None: never, as a kept replica's
        # first exchange in a new invocation)
        folded_seen = {key: self._folded.get(key) for key in requests}
        for key, (entry, meta_change, cursor, fold_at) in requests.items():
            self._config(key)
            log, sizes = self._name(key, "log"), self._name(key, "log_sizes")
            if entry:
                pipe.rpush(log, entry)
                pipe.rpush(sizes, len(entry))
                pipe.expire(log, self.ttl)
                pipe.expire(sizes, self.ttl)
            else:
                pipe.llen(log)
            pipe.evalsha(
                self._count_sha,
                5,
                *[self._name(key, part) for part in ("config", "meta", "folded")],
                sizes,
                self._name(key, "fold_claim"),
                fold_at,
                " ".join(META_NAMES),
                *map(repr, meta_change.tolist()),
            )
            # the others' entries, as long as no fold moved them since this worker last
            # heard
            if folded_seen[key] is not None:
                pipe.lrange(log, max(cursor - folded_seen[key], 0), -2 if entry else -1)
            else:
                pipe.echo(b"")  # (no guess at where they start: read across the folds below)
        try:
            try:
                replies = self._call(pipe.execute)
            except self._no_script:  # the server forgot its scripts: restarted?
                self._count_sha = None
                if not all(self.holds(key) for key in requests):
                    raise self._lost() from None
                raise ConnectionError(
                    f"parameter store {redacted(self.url)} dropped its scripts during the "
                    "fit (SCRIPT FLUSH?)"
                ) from None
        except StoreLost:
            # the namespace lost its model (a restarted server): what landed goes
            for key in requests:
                self._call(
                    self._client.delete, self._name(key, "log"), self._name(key, "log_sizes")
                )
            raise
        answers = {}
        for key, (entry, _, cursor, _) in requests.items():
            n_replies = 6 if entry else 3
            (length, *_, (folded, meta, fold), others), replies = (
                replies[:n_replies],
                replies[n_replies:],
            )
            end = int(folded) + int(length)
            self._folded[key] = int(folded)
            seen = folded_seen[key]
            if seen is None or int(folded) != seen or cursor < seen:
                others = self._call(self._entries_between, key, cursor, end - 1 if entry else end)
            answers[key] = Exchange(
                int(folded),
                end,
                np.array(meta, dtype=float),
                None if others is None else list(others),
                bool(fold),
            )
        return answers

    def _entries_between(self, key: str, start: int, stop: int) -> list[bytes] | None:
        """The entries from position ``start`` to ``stop`` (counted from the first entry
        ever), from the log and the entries of the last fold; None when a fold took
        some away. For a worker whose last exchange was before a fold (rare: once a
        fold a worker, and a kept replica's first): the positions in the lists are
        known once the fold count is, read under WATCH (a fold meanwhile: read again)."""

        def name(part: str) -> str:
            return self._name(key, part)

        while True:
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(name("folded"))
                    folded = int(pipe.get(name("folded")) or 0)
                    first_recent = folded - pipe.llen(name("recent"))
                    if start < first_recent:
                        return None
                    pipe.multi()
                    if start < min(stop, folded):
                        pipe.lrange(
                            name("recent"),
                            start - first_recent,
                            min(stop, folded) - first_recent - 1,
                        )
                    if max(start, folded) < stop:
                        pipe.lrange(name("log"), max(start, folded) - folded, stop - folded - 1)
                    return [entry for entries in pipe.execute() for entry in entries]
                except self._watch_error:
                    continue  # a fold came between: the positions moved

    def fold(self, key: str, table: ModelTable, folded: int, end: int) -> bool:
        """Make ``table`` (a replica that includes the log up to ``end``) the base of
        ``key`` and drop those entries, unless another fold came first: whether it did."""
        names = [name for name, width in self._widths(key).items() if width]
        # (sent as they are: no copy of the whole model more)
        values = [
            memoryview(np.ascontiguousarray(getattr(table, name), "<f8")).cast("B")
            for name in names
        ]

        def name(part: str) -> str:
            return self._name(key, part)

        def attempt() -> bool:
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(name("folded"), name("config"))
                    if not pipe.exists(name("config")):
                        raise self._lost(key)
                    if int(pipe.get(name("folded")) or 0) != folded or end <= folded:
                        return False  # another fold came first, or nothing to fold
                    pipe.multi()
                    for array, value in zip(names, values, strict=True):
                        pipe.set(name(array), value, ex=self.ttl)
                    # the folded entries go to the list of recent ones, which a worker
                    # one exchange behind reads rather than the whole model: copied and
                    # trimmed in the server (moving them one by one sends each back)
                    n = end - folded
                    pipe.copy(name("log"), name("recent"), replace=True)
                    pipe.ltrim(name("recent"), 0, n - 1)
                    pipe.ltrim(name("log"), n, -1)
                    pipe.ltrim(name("log_sizes"), n, -1)
                    pipe.expire(name("recent"), self.ttl)
                    pipe.set(name("folded"), end, ex=self.ttl)
                    pipe.execute()
                    self._folded[key] = end
                    return True
                except self._watch_error:  # another fold came first
                    return False
                finally:
                    self._client.delete(name("fold_claim"))

        return self._call(attempt)

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

    def claim(self):
        self.remove_leftovers()
        self._call(record_owner, self._client, self.namespace)
        self._heartbeat = Heartbeat(self._client, self.namespace)

    def leftovers(self) -> list[Leftover]:
        """The namespaces on this server whose fit's driver is gone."""
        return self._call(leftovers_of, self._client)

    def remove_leftovers(self) -> list[Leftover]:
        """Remove the keys of :meth:`leftovers`; what was removed."""
        return self._call(remove_leftovers_of, self._client)

    def delete(self):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        pattern = f"{self.namespace}:*"
        keys = self._call(lambda: list(self._client.scan_iter(match=pattern, count=1000)))
        if keys:
            self._call(self._client.unlink, *keys)
        # (after the keys: a driver killed in between leaves a record that says it is gone)
        self._call(forget_owner, self._client, self.namespace)
        self._configs.clear()

    def handle(self):
        return RedisStoreHandle(self.url, self.namespace, self.ttl, self._password)

    def close(self):
        self._client.close()  # (its connections stay in the process's pool: _POOLS)
