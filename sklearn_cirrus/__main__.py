"""Command line: ``python -m sklearn_cirrus demo [options]``."""

from __future__ import annotations

import argparse

from . import __version__
from .demo import run_demo


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
    demo.add_argument("--data", help="LIBSVM training file (default: generated data)")
    demo.add_argument("--test-data", help="LIBSVM test file (default: 20%% of the training data)")
    demo.add_argument("--n-samples", type=int, default=200_000, help="rows of generated data")
    demo.add_argument(
        "--executor",
        default=None,
        help="where workers run: threads (default), processes, sequential, dask://host:port, "
        "lithops",
    )
    demo.add_argument(
        "--n-workers", type=int, default=2, help="worker invocations kept in flight (default 2)"
    )
    args = parser.parse_args(argv)
    run_demo(
        args.data,
        args.test_data,
        n_samples=args.n_samples,
        executor=args.executor,
        n_workers=args.n_workers,
    )


if __name__ == "__main__":
    main()
