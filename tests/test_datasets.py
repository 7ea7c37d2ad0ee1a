"""Fetchers download a published file once, check it, and read it from then on.

The published files are served over loopback from a mirror built out of the project's
shared copies (byte-exact with the originals), in the layout of the real sites.
"""

import numpy as np
import pytest
from conftest import dataset_path
from sklearn.datasets import load_svmlight_file

from sklearn_cirrus.datasets import fetch_libsvm, fetch_movielens, load_movielens


def test_libsvm_is_downloaded_once_then_read_from_data_home(mirror, tmp_path):
    served, _ = mirror
    home = tmp_path / "home"
    X, y = fetch_libsvm("a9a.t", data_home=home, base_url=served.url)
    expected_X, expected_y = load_svmlight_file(
        str(dataset_path("a9a_t.libsvm.gz")), n_features=123
    )
    assert X.shape == (16_281, 123)  # the full width, though the test split never uses 123
    np.testing.assert_array_equal(X.toarray(), expected_X.toarray())
    np.testing.assert_array_equal(y, expected_y)
    assert served.requests == ["/a9a.t"]
    again, _ = fetch_libsvm("a9a.t", data_home=home, base_url=served.url)
    assert served.requests == ["/a9a.t"] and again.shape == X.shape
    assert [p.name for p in (home / "sklearn_cirrus").iterdir()] == ["a9a.t"]


def test_movielens_is_read_from_its_archive(mirror, tmp_path):
    served, _ = mirror
    X, y = fetch_movielens(data_home=tmp_path / "home", base_url=served.url)
    expected_X, expected_y = load_movielens(dataset_path("ml-latest-small_ratings.csv.gz"))
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)
    assert served.requests == ["/ml-latest-small.zip"]


def test_a_file_that_is_not_the_published_one_is_refused_and_not_kept(mirror, tmp_path):
    served, folder = mirror
    with open(folder / "a9a", "ab") as f:
        f.write(b"-1 3:1\n")
    home = tmp_path / "home"
    with pytest.raises(OSError, match="does not match the published file.*nothing was kept"):
        fetch_libsvm("a9a", data_home=home, base_url=served.url)
    assert list((home / "sklearn_cirrus").iterdir()) == []


def test_missing_files_and_unknown_names_are_told_clearly(mirror, tmp_path):
    served, _ = mirror
    home = tmp_path / "home"
    with pytest.raises(OSError, match="download_if_missing is False"):
        fetch_libsvm("a9a", data_home=home, download_if_missing=False)
    with pytest.raises(OSError, match=r"could not download .*/w8a: HTTP Error 404"):
        fetch_libsvm("w8a", data_home=home, base_url=served.url)
    with pytest.raises(ValueError, match=r"unknown LIBSVM dataset 'rcv1'; known: \['a9a'"):
        fetch_libsvm("rcv1", data_home=home)
    with pytest.raises(ValueError, match="unknown MovieLens dataset '25m'"):
        fetch_movielens("25m", data_home=home)
