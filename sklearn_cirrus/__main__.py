"""Command line: ``sklearn-cirrus demo [options]`` (or ``python -m sklearn_cirrus``), and
``sklearn-cirrus cleanup``."""

from __future__ import annotations

import argparse

from . import __version__
from .credentials import redacted
from .demo import run_demo
from .executors import executor_names
from .namespaces import leftovers, remove_leftovers, shared_memory_root
from .store.redis_store import RedisStore

# what a user's mistake (a name, a file, a server, an extra) raises while the demo runs:
# told in one line, as argparse tells a wrong option, not as a traceback
_USER_ERRORS = (ValueError, OSError, ImportError, ConnectionError)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _executor(text: str) -> str:
    if text.split("://", 1)[0] not in executor_names():
        raise argparse.ArgumentTypeError(
            f"unknown executor {text!r}; valid executors are {', '.join(executor_names())} "
            "(dask as dask://host:port)"
        )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_cirrus",
        description="scikit-learn estimators trained by asynchronous SGD on serverless workers",
    )
    parser.add_argument("--version", action="version", version=f"sklearn-cirrus {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train ServerlessSGDClassifier next to scikit-learn's SGDClassifier"
    )
    demo.add_argument(
        "--data",
        help="LIBSVM training file, or a dataset of the LIBSVM page by name (a9a, w8a, ...: "
        "downloaded once, as fetch_libsvm does); default: generated data",
    )
    demo.add_argument("--test-data", help="LIBSVM test file (default: 20%% of the training data)")
    demo.add_argument(
        "--n-samples", type=_positive_int, default=200_000, help="rows of generated data"
    )
    demo.add_argument(
        "--executor",
        type=_executor,
        default=None,
        help="where workers run: threads (default), processes, sequential, dask://host:port, "
        "lithops",
    )
    demo.add_argument(
        "--n-workers",
        type=_positive_int,
        default=2,
        help="worker invocations kept in flight (default 2)",
    )
    cleanup = commands.add_parser(
        "cleanup",
        help="remove the shards and stores that fits of processes no longer running left "
        "on this machine (fits killed by SIGKILL or the OOM killer)",
    )
    cleanup.add_argument(
        "--root", help=f"where fits keep them (default: {shared_memory_root()})", default=None
    )
    cleanup.add_argument(
        "--store",
        help="also remove the keys that fits whose driver is gone left on this Redis "
        "server (redis://host:port/db or rediss://...)",
        default=None,
    )
    cleanup.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        _cleanup(args.root, dry_run=args.dry_run)
        if args.store is not None:
            try:
                _cleanup_store(args.store, dry_run=args.dry_run)
            except _USER_ERRORS as exc:
                parser.exit(2, f"{parser.prog} cleanup: error: {exc}\n")
        return
    try:
        run_demo(
            args.data,
            args.test_data,
            n_samples=args.n_samples,
            executor=args.executor,
            n_workers=args.n_workers,
        )
    except _USER_ERRORS as exc:
        parser.exit(2, f"{parser.prog} demo: error: {exc}\n")


def _cleanup(root: str | None, *, dry_run: bool) -> None:
    if dry_run:
        found = leftovers(root)
        for folder in found:
            print(f"would remove {folder}")
        print(f"{len(found)} leftover folder(s)")
        return
    removed = remove_leftovers(root)
    for folder, size in removed:
        print(f"removed {folder} ({size / 2**20:.1f} MB)")
    total = sum(size for _, size in removed)
    print(f"{len(removed)} leftover folder(s) removed, {total / 2**20:.1f} MB freed")


def _cleanup_store(url: str, *, dry_run: bool) -> None:
    if url.split("://", 1)[0] not in ("redis", "rediss"):
        raise ValueError(f"--store takes a Redis server's URL (redis://host:port/db), got {url!r}")
    store = RedisStore(url)
    try:
        found = store.leftovers() if dry_run else store.remove_leftovers()
    finally:
        store.close()
    verb = "would remove" if dry_run else "removed"
    for leftover in found:
        print(f"{verb} {leftover.namespace} ({leftover.keys} keys; owner {leftover.owner}, gone)")
    done = "to remove" if dry_run else "removed"
    print(f"{len(found)} leftover namespace(s) on {redacted(url)} {done}")


if __name__ == "__main__":
    main()
