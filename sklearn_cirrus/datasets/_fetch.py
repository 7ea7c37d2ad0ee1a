"""Fetchers for the public datasets of the examples and benchmarks, downloaded once.

A fetched file is kept in ``data_home`` (scikit-learn's data home, ``~/scikit_learn_data``
unless ``SCIKIT_LEARN_DATA`` says otherwise, in a ``sklearn_cirrus`` folder) once its
sha256 matches the published file's, and read from there afterwards. A download that
fails or does not match leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._movielens import load_movielens

LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class _Published:
    """A file at a base URL: its name, the sha256 of what is read from it (the member of
    a zip archive, else the file), and for LIBSVM files the number of features."""

    file: str
    sha256: str
    member: str | None = None
    n_features: int | None = None


LIBSVM_DATASETS = {
    # UCI Adult (census income > 50K): 32,561 train / 16,281 test rows, 123 binary features
    "a9a": _Published(
        "a9a", "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906", n_features=123
    ),
    "a9a.t": _Published(
        "a9a.t", "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9", n_features=123
    ),
    # web page classification (Platt 1998): 49,749 rows, 300 binary features, 3% positive
    "w8a": _Published(
        "w8a", "6a9fa8fd5f524303240a5db07d4b3d4a51e8b7b4b20a914105d8e3e8c81640f2", n_features=300
    ),
}

MOVIELENS_DATASETS = {
    # 100,836 ratings of 9,724 movies by 610 users (2018-09)
    "latest-small": _Published(
        "ml-latest-small.zip",
        "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
        member="ml-latest-small/ratings.csv",
    ),
}


def _data_home(data_home) -> Path:
    from sklearn.datasets import get_data_home

    return Path(get_data_home(data_home)) / "sklearn_cirrus"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(published: _Published, base_url: str, data_home, download_if_missing: bool) -> Path:
    """The local copy of ``published``, downloaded from ``base_url`` if not kept yet."""
    folder = _data_home(data_home)
    kept = folder / Path(published.member or published.file).name
    if kept.exists():
        return kept
    url = f"{base_url.rstrip('/')}/{published.file}"
    if not download_if_missing:
        raise OSError(f"{kept} not found and download_if_missing is False (source: {url})")
    folder.mkdir(parents=True, exist_ok=True)
    # downloaded and checked beside its final place, then renamed: never half a file
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as scratch:
        downloaded = Path(scratch) / published.file
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(downloaded, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as exc:
            raise OSError(f"could not download {url}: {exc}") from exc
        content = downloaded
        if published.member is not None:
            with zipfile.ZipFile(downloaded) as archive:
                content = Path(archive.extract(published.member, scratch))
        digest = _sha256(content)
        if digest != published.sha256:
            raise OSError(
                f"{url} does not match the published file (sha256 {digest}, expected "
                f"{published.sha256}); nothing was kept"
            )
        os.replace(content, kept)
    return kept


def _published(catalogue: dict, name: str, what: str) -> _Published:
    if name not in catalogue:
        raise ValueError(f"unknown {what} dataset {name!r}; known: {sorted(catalogue)}")
    return catalogue[name]


def fetch_libsvm(
    name: str, *, data_home=None, download_if_missing: bool = True, base_url: str = LIBSVM_URL
):
    """Load a dataset of the LIBSVM binary classification page, downloading it once.

    Parameters
    ----------
    name : {'a9a', 'a9a.t', 'w8a'}
        The file's name on the LIBSVM page (``a9a.t`` is a9a's test split).
    data_home : str or path-like, default=None
        Where downloaded files are kept; None: scikit-learn's data home.
    download_if_missing : bool, default=True
        Download the file when it is not kept yet; else raise ``OSError``.
    base_url : str, default=LIBSVM_URL
        Where the files are published (a mirror, or a local copy's URL).

    Returns
    -------
    X : csr_matrix of shape (n_samples, n_features)
        The features, with the dataset's full number of features (train and test
        splits agree).
    y : ndarray of shape (n_samples,)
        Labels -1 / +1, as published.
    """
    from sklearn.datasets import load_svmlight_file

    published = _published(LIBSVM_DATASETS, name, "LIBSVM")
    path = _fetch(published, base_url, data_home, download_if_missing)
    X, y = load_svmlight_file(str(path), n_features=published.n_features)
    return X, y


def fetch_movielens(
    name: str = "latest-small",
    *,
    data_home=None,
    download_if_missing: bool = True,
    base_url: str = GROUPLENS_URL,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a MovieLens ratings set from GroupLens, downloading it once.

    MovieLens is GroupLens Research's (University of Minnesota): free for research,
    with acknowledgement (Harper and Konstan, ACM TiiS 5(4), 2015), not for commercial
    use without their permission; see the README in their archive.

    Parameters
    ----------
    name : {'latest-small'}, default='latest-small'
        The release.
    data_home : str or path-like, default=None
        Where downloaded files are kept; None: scikit-learn's data home.
    download_if_missing : bool, default=True
        Download the ratings when they are not kept yet; else raise ``OSError``.
    base_url : str, default=GROUPLENS_URL
        Where the archives are published (a mirror, or a local copy's URL).

    Returns
    -------
    X : ndarray of shape (n_ratings, 2)
        (user id, movie id) pairs.
    y : ndarray of shape (n_ratings,)
        Ratings.
    """
    published = _published(MOVIELENS_DATASETS, name, "MovieLens")
    return load_movielens(_fetch(published, base_url, data_home, download_if_missing))
