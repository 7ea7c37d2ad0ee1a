"""MovieLens rating files, in each of the formats GroupLens has published."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="latin-1")
    return open(path, encoding="latin-1")


def load_movielens(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read MovieLens ratings: ``ratings.csv``, ``u.data`` or ``ratings.dat`` (optionally .gz).

    The format is told by the file name: ``*.csv`` (header ``userId,movieId,rating,...``,
    the "latest" releases), ``u.data`` (tab-separated, MovieLens 100K) or ``*.dat``
    (``::``-separated, MovieLens 1M and 10M).

    Parameters
    ----------
    path : str or Path
        The ratings file.

    Returns
    -------
    X : ndarray of shape (n_ratings, 2)
        (user id, movie id) pairs as integers.
    y : ndarray of shape (n_ratings,)
        Ratings.
    """
    path = Path(path)
    name = path.name[:-3] if path.suffix == ".gz" else path.name
    with _open_text(path) as f:
        if name.endswith(".csv"):
            header = f.readline().strip().split(",")
            if header[:3] != ["userId", "movieId", "rating"]:
                raise ValueError(f"{path} does not start with userId,movieId,rating: {header}")
            text, separator = f.read(), ","
        elif name.endswith(".dat"):
            text, separator = f.read().replace("::", "\t"), "\t"
        elif name == "u.data":
            text, separator = f.read(), "\t"
        else:
            raise ValueError(
                f"unknown MovieLens file {path.name!r}: expected ratings.csv, u.data or ratings.dat"
            )
    table = np.loadtxt(io.StringIO(text), delimiter=separator, usecols=(0, 1, 2), ndmin=2)
    return table[:, :2].astype(np.int64), table[:, 2].astype(np.float64)
