"""Work that is not training, run by the same workers: maps over a dataset's shards.

Converting files into shards, a scaler's statistics, predictions over a dataset: each is
a list of small picklable tasks whose results come back to the driver in order.
:func:`run_tasks` keeps ``n_workers`` of them in flight on the executor and relaunches a
failed one up to ``max_retries`` times; :func:`map_shards` applies a function to every
shard of a :class:`~sklearn_cirrus.data.DataHandle`, a worker a group of shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import DataHandle, load_shard
from ..exceptions import WorkerError
from ..executors import Executor, WorkerResources, make_executor

# shards a map gives each worker at once: enough to amortise an invocation's start,
# few enough to spread the work and relaunch little on a failure
SHARDS_PER_TASK = 4


@dataclass(frozen=True)
class ShardMapTask:
    data: DataHandle
    shard_ids: tuple[int, ...]
    fn: Callable[[Any], Any]


def run_shard_map(task: ShardMapTask) -> list:
    """The worker side of :func:`map_shards`: ``fn`` of each prepared shard."""
    return [task.fn(load_shard(task.data, shard_id)) for shard_id in task.shard_ids]


@dataclass(frozen=True)
class ShardReduceTask(ShardMapTask):
    combine: Callable[[Any, Any], Any] = None


def run_shard_reduce(task: ShardReduceTask):
    """The worker side of :func:`reduce_shards`: its shards' results, combined."""
    result = None
    for shard_id in task.shard_ids:
        part = task.fn(load_shard(task.data, shard_id))
        result = part if result is None else task.combine(result, part)
    return result


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    executor: str | Executor | None = None,
    n_workers: int = 2,
    resources: WorkerResources = WorkerResources(),
    max_retries: int = 2,
    on_result: Callable[[int, Any], None] | None = None,
) -> list:
    """``[fn(task) for task in tasks]``, computed by workers on ``executor``; or, with
    ``on_result``, each ``fn(task)`` handed to ``on_result(index, result)`` as it
    comes (and not kept)."""
    executor, owned = make_executor(executor)
    results: list = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    attempts = [0] * len(tasks)
    in_flight: dict = {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < n_workers:
                index = pending.pop()
                in_flight[executor.submit(fn, tasks[index], resources)] = index
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                index = in_flight.pop(future)
                try:
                    result = future.result()
                    if on_result is None:
                        results[index] = result
                    else:
                        on_result(index, result)
                except Exception as exc:
                    if isinstance(exc, (ValueError, TypeError)) or attempts[index] >= max_retries:
                        # bad input fails the same way every time: say so at once
                        for other in in_flight:
                            other.cancel()
                        if isinstance(exc, (ValueError, TypeError, WorkerError)):
                            raise
                        raise WorkerError(
                            f"a worker invocation failed {attempts[index] + 1} times; last "
                            f"failure: {type(exc).__name__}: {exc}"
                        ) from exc
                    attempts[index] += 1
                    pending.append(index)
    finally:
        if owned:
            executor.shutdown()
    return results


def _shard_groups(data: DataHandle) -> list[tuple[int, ...]]:
    groups = np.array_split(np.arange(data.n_shards), max(1, -(-data.n_shards // SHARDS_PER_TASK)))
    return [tuple(int(i) for i in group) for group in groups if group.size]


def map_shards(data: DataHandle, fn: Callable[[Any], Any], **run_options) -> list:
    """``fn`` of every shard of ``data``, prepared as its handle says, in shard order."""
    tasks = [ShardMapTask(data, group, fn) for group in _shard_groups(data)]
    return [result for part in run_tasks(run_shard_map, tasks, **run_options) for result in part]


def reduce_shards(
    data: DataHandle, fn: Callable[[Any], Any], combine: Callable[[Any, Any], Any], **run_options
):
    """``fn`` of every shard, combined by ``combine`` (associative and commutative): by
    each worker over its shards, then by the driver as workers finish, so that the
    driver holds one result at a time, never one a shard."""
    total = []

    def absorb(_, part) -> None:
        total[:] = [part if not total else combine(total[0], part)]

    tasks = [ShardReduceTask(data, group, fn, combine) for group in _shard_groups(data)]
    run_tasks(run_shard_reduce, tasks, on_result=absorb, **run_options)
    return total[0] if total else None
