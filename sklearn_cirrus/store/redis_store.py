"""A parameter store on Redis, reachable by workers anywhere: ``store="redis://host:port/db"``.

Each key's parameters, optimizer state, penalty columns and metadata live under one
namespace prefix: the arrays as raw little-endian float64 strings (row-major), the
schedule position, step-size scale and penalty clocks in a hash, the update rule in a
JSON string. Values never travel as pickles, so a store shared by many users is no way
to run code.

Workers train on pulled rows and add back what changed. Pulls and adds run as Lua
scripts inside Redis: an add reads the rows it updates, adds the deltas and writes them
back in one script, which Redis runs atomically, so concurrent adds never lose an
update. Both scripts sort the rows and move each run of consecutive rows with one
GETRANGE/SETRANGE, so dense models (all rows) cost one call per array and sparse ones
one call per run. Everything expires after ``ttl`` seconds in
case the driver dies; ``delete`` removes it at the end of a fit.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import numpy as np

from ..credentials import redacted
from .base import ModelTable, ParameterStore
from .optimizers import META_NAMES, OptimizerConfig, new_meta

DEFAULT_TTL_SECONDS = 24 * 3600
# where a password not written in the store URL is read from, in the driver and workers
PASSWORD_VARIABLE = "SKLEARN_CIRRUS_REDIS_PASSWORD"
# Values unpacked per struct call: Lua's C stack holds about 8,000.
_CHUNK = 1000

_LUA_COMMON = """
local function unpack_numbers(format, blob, count, position)
  local out = {}
  local done = 0
  position = position or 1
  while done < count do
    local n = math.min(count - done, CHUNK)
    local values = {struct.unpack('<' .. string.rep(format, n), blob, position)}
    for k = 1, n do out[done + k] = values[k] end
    position = values[n + 1]
    done = done + n
  end
  return out, position
end

local function pack_doubles(values, first, last)
  local parts = {}
  local k = first
  while k <= last do
    local n = math.min(last - k + 1, CHUNK)
    parts[#parts + 1] = struct.pack('<' .. string.rep('d', n), unpack(values, k, k + n - 1))
    k = k + n
  end
  return table.concat(parts)
end

-- runs of consecutive rows, as {first_row, first_index, count}
local function runs(rows)
  local out = {}
  local i = 1
  while i <= #rows do
    local j = i
    while j < #rows and rows[j + 1] == rows[j] + 1 do j = j + 1 end
    out[#out + 1] = {rows[i], i, j - i + 1}
    i = j + 1
  end
  return out
end
""".replace("CHUNK", str(_CHUNK))

_PULL = (
    _LUA_COMMON
    + """
-- KEYS[1]: array; ARGV: n_cols, n_rows, sorted int32 rows
local width = tonumber(ARGV[1]) * 8
local rows = unpack_numbers('i4', ARGV[3], tonumber(ARGV[2]))
local parts = {}
for _, run in ipairs(runs(rows)) do
  local offset = run[1] * width
  parts[#parts + 1] = redis.call('GETRANGE', KEYS[1], offset, offset + run[3] * width - 1)
end
return table.concat(parts)
"""
)

_ADD = (
    _LUA_COMMON
    + """
-- KEYS[1]: array; ARGV: n_cols, n_rows, sorted int32 rows, float64 deltas of those rows
local n_cols = tonumber(ARGV[1])
local width = n_cols * 8
local rows = unpack_numbers('i4', ARGV[3], tonumber(ARGV[2]))
local delta = unpack_numbers('d', ARGV[4], tonumber(ARGV[2]) * n_cols)
for _, run in ipairs(runs(rows)) do
  local offset = run[1] * width
  local count = run[3] * n_cols
  local d0 = (run[2] - 1) * n_cols
  local values = unpack_numbers('d',
    redis.call('GETRANGE', KEYS[1], offset, offset + count * 8 - 1), count)
  for k = 1, count do values[k] = values[k] + delta[d0 + k] end
  redis.call('SETRANGE', KEYS[1], offset, pack_doubles(values, 1, count))
end
return 1
"""
)


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
        raised as ``ConnectionError``.
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
        self.namespace = namespace or f"cirrus:{uuid.uuid4().hex}"
        self.ttl = ttl
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._refusals = (redis.AuthenticationError, redis.exceptions.NoPermissionError)
        # a password kept out of the URL (and so out of pickles and parameters)
        password = None
        if urlsplit(url).password is None:
            password = os.environ.get(PASSWORD_VARIABLE)
        self._client = redis.Redis.from_url(
            url,
            **({"password": password} if password else {}),
            retry=_retry_but_not_refusals(Retry, self._refusals)(
                ExponentialBackoff(cap=2.0, base=0.05), retries
            ),
            retry_on_error=list(self._errors),
            socket_connect_timeout=5,
            socket_timeout=30,
        )
        self._pull_script = self._client.register_script(_PULL)
        self._add_script = self._client.register_script(_ADD)
        # key -> (optimizer, n_rows, n_cols), read once per connection
        self._configs: dict[str, tuple[OptimizerConfig, int, int]] = {}

    def __repr__(self) -> str:
        return f"RedisStore({redacted(self.url)!r}, namespace={self.namespace!r})"

    def _name(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except self._refusals as exc:
            raise PermissionError(
                f"parameter store {redacted(self.url)} refused the credentials: {exc}"
            ) from None
        except self._errors as exc:
            raise ConnectionError(
                f"parameter store {redacted(self.url)} is unreachable: {exc}"
            ) from exc

    def _config(self, key: str) -> tuple[OptimizerConfig, int, int]:
        if key not in self._configs:
            raw = self._call(self._client.get, self._name(key, "config"))
            if raw is None:
                raise KeyError(f"no parameters named {key!r} in store {self.namespace!r}")
            spec = json.loads(raw)
            self._configs[key] = (OptimizerConfig(**spec["optimizer"]), *spec["shape"])
        return self._configs[key]

    def create(self, key, init, optimizer, state=None, samples_seen=0.0):
        init = np.asarray(init, dtype="<f8")
        if init.ndim != 2:
            raise ValueError(f"parameters must be 2-D, got shape {init.shape}")
        spec = {"optimizer": asdict(optimizer), "shape": init.shape}
        state_values = np.zeros_like(init) if state is None else np.asarray(state, dtype="<f8")
        aux_values = np.zeros((init.shape[0], optimizer.aux_width(init.shape[1])), dtype="<f8")
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._name(key, "params"), init.tobytes(), ex=self.ttl)
        pipe.set(self._name(key, "state"), state_values.tobytes(), ex=self.ttl)
        pipe.set(self._name(key, "aux"), aux_values.tobytes(), ex=self.ttl)
        pipe.delete(self._name(key, "meta"))
        meta = new_meta(samples_seen).tolist()  # floats, not numpy scalars, on the wire
        pipe.hset(self._name(key, "meta"), mapping=dict(zip(META_NAMES, meta, strict=True)))
        pipe.expire(self._name(key, "meta"), self.ttl)
        pipe.set(self._name(key, "config"), json.dumps(spec), ex=self.ttl)
        self._call(pipe.execute)
        self._configs[key] = (optimizer, *init.shape)

    def _sorted_rows(self, key, rows):
        """Rows as sorted int32 and the order that sorted them (None: already in order)."""
        if rows is None:
            return np.arange(self._config(key)[1], dtype="<i4"), None
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        return rows[order].astype("<i4"), order

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

    @staticmethod
    def _unsorted(blob: bytes, n_cols: int, order: np.ndarray | None) -> np.ndarray:
        values = np.frombuffer(blob, dtype="<f8").reshape(-1, n_cols)
        if order is None:
            return values.copy()
        out = np.empty_like(values)
        out[order] = values
        return out

    def _pull_params(self, key, rows):
        n_cols = self._config(key)[2]
        sorted_rows, order = self._sorted_rows(key, rows)
        blob = self._call(
            self._pull_script,
            keys=[self._name(key, "params")],
            args=[n_cols, sorted_rows.size, sorted_rows.tobytes()],
        )
        return self._unsorted(blob, n_cols, order)

    def pull_table(self, key, rows=None):
        config, _, n_cols = self._config(key)
        widths = self._widths(key)
        sorted_rows, order = self._sorted_rows(key, rows)
        pipe = self._client.pipeline(transaction=False)
        for name, width in widths.items():
            if width:
                self._pull_script(
                    keys=[self._name(key, name)],
                    args=[width, sorted_rows.size, sorted_rows.tobytes()],
                    client=pipe,
                )
        pipe.hmget(self._name(key, "meta"), META_NAMES)
        *blobs, meta = self._call(pipe.execute)
        arrays = {}
        for name, width in widths.items():
            if width:
                arrays[name] = self._unsorted(blobs.pop(0), width, order)
            else:
                arrays[name] = np.zeros((0, n_cols if name == "state" else 0))
        return ModelTable(
            arrays["params"], arrays["state"], arrays["aux"], np.array(meta, dtype=float), config
        )

    def add_table(self, key, rows, delta):
        sorted_rows, order = self._sorted_rows(key, rows)
        pipe = self._client.pipeline(transaction=True)
        for name, width in self._widths(key).items():
            if width:
                change = getattr(delta, name)
                if order is not None:
                    change = change[order]
                self._add_script(
                    keys=[self._name(key, name)],
                    args=[
                        width,
                        sorted_rows.size,
                        sorted_rows.tobytes(),
                        np.ascontiguousarray(change, dtype="<f8").tobytes(),
                    ],
                    client=pipe,
                )
        for name, change in zip(META_NAMES, delta.meta, strict=True):
            if change:
                pipe.hincrbyfloat(self._name(key, "meta"), name, float(change))
        self._call(pipe.execute)

    def pull_state(self, key):
        config, _, n_cols = self._config(key)
        if not config.has_state:
            return None
        blob = self._call(self._client.get, self._name(key, "state"))
        return np.frombuffer(blob, dtype="<f8").reshape(-1, n_cols).copy()

    def samples_seen(self, key):
        self._config(key)
        return float(self._call(self._client.hget, self._name(key, "meta"), "t"))

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
