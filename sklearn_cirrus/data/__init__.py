"""The data plane: staging datasets as minibatch shards and streaming them to workers.

Workers import only what reads shards (``handle``, ``reader``); staging, which needs
scipy, loads on first use, so that a cold worker starts without it.
"""

from importlib import import_module

from .handle import DataHandle
from .reader import ShardReader, load_shard, minibatches

_LAZY = {
    "data_bytes": ".staging",
    "remove": ".staging",
    "shards_in_memory": ".staging",
    "stage": ".staging",
}

__all__ = [
    "DataHandle",
    "ShardReader",
    "data_bytes",
    "load_shard",
    "minibatches",
    "remove",
    "shards_in_memory",
    "stage",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
