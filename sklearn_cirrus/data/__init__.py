"""The data plane: staging datasets as minibatch shards and streaming them to workers."""

from .reader import ShardReader, load_shard, minibatches
from .staging import DataHandle, remove, stage

__all__ = ["DataHandle", "ShardReader", "load_shard", "minibatches", "remove", "stage"]
