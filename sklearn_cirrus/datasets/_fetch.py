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
    """A file at a base URL, kept under ``folder`` once checked.

    ``sha256`` pins what is read (the zip member, else the file); ``md5_sidecar`` checks
    the file against the ``<file>.md5`` the publisher puts beside it (GroupLens does).
    """

    folder: str
    file: str
    sha256: str | None = None
    md5_sidecar: bool = False
    member: str | None = None


# LIBSVM binary classification sets: (train file, test file or None, number of features).
# The LIBSVM page publishes no checksums: the files of the project's own tests and
# benchmarks are pinned by sha256 below, the others are checked by parsing only.
_LIBSVM_FILES = {
    **{f"a{i}a": (f"a{i}a", f"a{i}a.t", 123) for i in range(1, 10)},
    **{f"w{i}a": (f"w{i}a", f"w{i}a.t", 300) for i in range(1, 9)},
    "ijcnn1": ("ijcnn1.bz2", "ijcnn1.t.bz2", 22),
    "rcv1.binary": ("rcv1_train.binary.bz2", "rcv1_test.binary.bz2", 47_236),
    "news20.binary": ("news20.binary.bz2", None, 1_355_191),
    "real-sim": ("real-sim.bz2", None, 20_958),
    "covtype.binary": ("covtype.libsvm.binary.bz2", None, 54),
    "url": ("url_combined.bz2", None, 3_231_961),
}
_LIBSVM_SHA256 = {
    "a9a": "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906",
    "a9a.t": "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9",
    "w8a": "6a9fa8fd5f524303240a5db07d4b3d4a51e8b7b4b20a914105d8e3e8c81640f2",
}
LIBSVM_DATASETS = tuple(_LIBSVM_FILES)

# MovieLens releases: the archive and its ratings file. Every archive is checked against
# GroupLens' published .md5; latest-small's ratings are also pinned by sha256.
_MOVIELENS_FILES = {
    "100k": ("ml-100k.zip", "ml-100k/u.data"),
    "1m": ("ml-1m.zip", "ml-1m/ratings.dat"),
    "10m": ("ml-10m.zip", "ml-10M100K/ratings.dat"),
    "20m": ("ml-20m.zip", "ml-20m/ratings.csv"),
    "25m": ("ml-25m.zip", "ml-25m/ratings.csv"),
    "32m": ("ml-32m.zip", "ml-32m/ratings.csv"),
    "latest-small": ("ml-latest-small.zip", "ml-latest-small/ratings.csv"),
}
_MOVIELENS_SHA256 = {
    "latest-small": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
}
MOVIELENS_DATASETS = tuple(_MOVIELENS_FILES)


def _data_home(data_home) -> Path:
    from sklearn.datasets import get_data_home

    return Path(get_data_home(data_home)) / "sklearn_cirrus"


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError as exc:
        raise OSError(
            f"could not download {url}: {exc} (offline? give the data_home that holds the "
            "file, or the base_url of a mirror)"
        ) from exc


def _check(url: str, what: str, found: str, expected: str) -> None:
    if found != expected:
        raise OSError(
            f"{url} does not match the published file ({what} {found}, expected {expected}); "
            "nothing was kept"
        )


def _fetch(published: _Published, read, base_url: str, data_home, download_if_missing: bool):
    """``read(path)`` of the local copy of ``published``, downloaded from ``base_url`` if
    not kept yet; a download is kept only once it is checked and ``read`` succeeds."""
    folder = _data_home(data_home) / published.folder
    kept = folder / Path(published.member or published.file).name
    if kept.exists():
        return read(kept)
    url = f"{base_url.rstrip('/')}/{published.file}"
    if not download_if_missing:
        raise OSError(f"{kept} not found and download_if_missing is False (source: {url})")
    folder.mkdir(parents=True, exist_ok=True)
    # downloaded and checked beside its final place, then renamed: never half a file
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as scratch:
        downloaded = Path(scratch) / published.file
        _download(url, downloaded)
        if published.md5_sidecar:
            sidecar = Path(scratch) / "published.md5"
            _download(f"{url}.md5", sidecar)
            # "MD5 (ml-100k.zip) = 0e33..." or md5sum's "0e33...  ml-100k.zip"
            words = sidecar.read_text().replace("=", " ").split()
            expected = next((w for w in words if len(w) == 32), "none in the .md5 file")
            _check(url, "md5", _digest(downloaded, "md5"), expected.lower())
        content = downloaded
        if published.member is not None:
            with zipfile.ZipFile(downloaded) as archive:
                content = Path(archive.extract(published.member, scratch))
        if published.sha256 is not None:
            _check(url, "sha256", _digest(content, "sha256"), published.sha256)
        data = read(content)
        os.replace(content, kept)
    return data


def _unknown(name: str, what: str, known) -> ValueError:
    return ValueError(f"unknown {what} dataset {name!r}; known: {sorted(known)}")


def has_test_subset(name: str) -> bool:
    """Whether the LIBSVM page publishes a test file for ``name``."""
    return _LIBSVM_FILES[name][1] is not None


def fetch_libsvm(
    name: str,
    subset: str = "train",
    *,
    data_home=None,
    download_if_missing: bool = True,
    base_url: str = LIBSVM_URL,
):
    """Load a dataset of the LIBSVM binary classification page, downloading it once.

    Parameters
    ----------
    name : str
        The dataset, one of ``LIBSVM_DATASETS``: ``"a1a"`` ... ``"a9a"`` (UCI Adult),
        ``"w1a"`` ... ``"w8a"``, ``"ijcnn1"``, ``"rcv1.binary"``, ``"news20.binary"``,
        ``"real-sim"``, ``"covtype.binary"``, ``"url"``.
    subset : {'train', 'test'}, default='train'
        The training file, or the test file where the page has one.
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
        subsets agree).
    y : ndarray of shape (n_samples,)
        Labels -1 / +1, as published.

    Notes
    -----
    The LIBSVM page publishes no checksums: a9a (train and test) and w8a, the sets of
    this project's tests and benchmarks, are pinned by sha256; the others are checked
    by parsing only (a file that does not parse is not kept).
    """
    from sklearn.datasets import load_svmlight_file

    if name not in _LIBSVM_FILES:
        raise _unknown(name, "LIBSVM", _LIBSVM_FILES)
    train_file, test_file, n_features = _LIBSVM_FILES[name]
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if subset == "test" and test_file is None:
        raise ValueError(f"the LIBSVM page has no test file for {name!r}")
    file = train_file if subset == "train" else test_file
    pinned = _LIBSVM_SHA256.get(file)
    return _fetch(
        _Published("libsvm", file, pinned),
        lambda path: load_svmlight_file(str(path), n_features=n_features),
        base_url,
        data_home,
        download_if_missing,
    )


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
    name : {'latest-small', '100k', '1m', '10m', '20m', '25m', '32m'}, default='latest-small'
        The release (``MOVIELENS_DATASETS``).
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
    if name not in _MOVIELENS_FILES:
        raise _unknown(name, "MovieLens", _MOVIELENS_FILES)
    archive, member = _MOVIELENS_FILES[name]
    published = _Published(
        f"movielens-{name}", archive, _MOVIELENS_SHA256.get(name), md5_sidecar=True, member=member
    )
    return _fetch(published, load_movielens, base_url, data_home, download_if_missing)
