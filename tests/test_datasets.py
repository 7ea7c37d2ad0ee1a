"""Fetchers download a published file once, check it, and read it from then on.

The published files are served over loopback (fixture ``mirror``) from copies of the
project's shared datasets (byte-exact with the originals), in the layout of the real sites.
"""

import numpy as np
import pytest
from conftest import dataset_path
from sklearn.datasets import load_svmlight_file

from sklearn_cirrus.datasets import fetch_libsvm, fetch_movielens, load_movielens


def test_libsvm_is_downloaded_once_then_read_from_data_home(mirror, tmp_path):
    served, _ = mirror
    home = tmp_path / "home"
    X, y = fetch_libsvm("a9a", "test", data_home=home, base_url=served.url)
    expected_X, expected_y = load_svmlight_file(
        str(dataset_path("a9a_t.libsvm.gz")), n_features=123
    )
    assert X.shape == (16_281, 123)  # the full width, though the test split never uses 123
    np.testing.assert_array_equal(X.toarray(), expected_X.toarray())
    np.testing.assert_array_equal(y, expected_y)
    assert served.requests == ["/a9a.t"]
    again, _ = fetch_libsvm("a9a", "test", data_home=home, base_url=served.url)
    assert served.requests == ["/a9a.t"] and again.shape == X.shape
    assert [p.name for p in (home / "sklearn_cirrus" / "libsvm").iterdir()] == ["a9a.t"]


def test_a_set_without_a_published_checksum_is_checked_by_parsing(mirror, tmp_path):
    served, folder = mirror
    (folder / "a1a").write_bytes((folder / "a9a").read_bytes()[:5000].rsplit(b"\n", 1)[0])
    X, y = fetch_libsvm("a1a", data_home=tmp_path, base_url=served.url)
    assert X.shape[1] == 123 and set(np.unique(y)) <= {-1, 1}
    (folder / "a2a").write_text("not a LIBSVM file\n")
    with pytest.raises(ValueError):
        fetch_libsvm("a2a", data_home=tmp_path, base_url=served.url)
    assert not (tmp_path / "sklearn_cirrus" / "libsvm" / "a2a").exists()


@pytest.mark.parametrize("name", ["latest-small", "100k"])
def test_movielens_is_read_from_its_archive_checked_by_the_published_md5(mirror, tmp_path, name):
    served, _ = mirror
    X, y = fetch_movielens(name, data_home=tmp_path / "home", base_url=served.url)
    expected_X, expected_y = load_movielens(dataset_path("ml-latest-small_ratings.csv.gz"))
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)
    archive = "/ml-latest-small.zip" if name == "latest-small" else "/ml-100k.zip"
    assert served.requests == [archive, f"{archive}.md5"]


@pytest.mark.parametrize(
    "corrupt, fetch, message",
    [
        # the pinned sha256 of a LIBSVM file
        (lambda folder: open(folder / "a9a", "ab").write(b"-1 3:1\n"), "a9a", "sha256"),
        # GroupLens' .md5 beside the archive
        (
            lambda folder: (folder / "ml-100k.zip.md5").write_text(
                "MD5 (ml-100k.zip) = " + "0" * 32
            ),
            "100k",
            "md5",
        ),
    ],
)
def test_a_file_that_is_not_the_published_one_is_refused_and_not_kept(
    mirror, tmp_path, corrupt, fetch, message
):
    served, folder = mirror
    corrupt(folder)
    home = tmp_path / "home"
    with pytest.raises(OSError, match=f"does not match the published file \\({message}.*nothing"):
        if fetch == "a9a":
            fetch_libsvm("a9a", data_home=home, base_url=served.url)
        else:
            fetch_movielens(fetch, data_home=home, base_url=served.url)
    assert [p for p in (home / "sklearn_cirrus").rglob("*") if p.is_file()] == []


def test_missing_files_and_unknown_names_are_told_clearly(mirror, tmp_path):
    served, _ = mirror
    home = tmp_path / "home"
    with pytest.raises(OSError, match="download_if_missing is False"):
        fetch_libsvm("a9a", data_home=home, download_if_missing=False)
    with pytest.raises(OSError, match=r"could not download .*/w8a: HTTP Error 404.*offline\?"):
        fetch_libsvm("w8a", data_home=home, base_url=served.url)
    with pytest.raises(ValueError, match=r"unknown LIBSVM dataset 'rcv2'; known: \['a1a'"):
        fetch_libsvm("rcv2", data_home=home)
    with pytest.raises(ValueError, match="no test file for 'real-sim'"):
        fetch_libsvm("real-sim", "test", data_home=home)
    with pytest.raises(ValueError, match="unknown MovieLens dataset '7m'"):
        fetch_movielens("7m", data_home=home)
