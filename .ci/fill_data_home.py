"""Fill a scikit-learn data home with the project's shared datasets, laid out as
``fetch_libsvm`` and ``fetch_movielens`` keep their downloads, so that the examples (and
the documentation's gallery, which runs them) need no network.

    python .ci/fill_data_home.py SHARED_DATASETS_FOLDER DATA_HOME
"""

import gzip
import shutil
import sys
from pathlib import Path

from sklearn_cirrus import fetch_libsvm, fetch_movielens

# shared file -> where the fetchers keep the published one (under DATA_HOME/sklearn_cirrus)
KEPT = {
    "a9a.libsvm.gz": "libsvm/a9a",
    "a9a_t.libsvm.gz": "libsvm/a9a.t",
    "w8a.libsvm.gz": "libsvm/w8a",
    "ml-latest-small_ratings.csv.gz": "movielens-latest-small/ratings.csv",
}


def main(shared: Path, home: Path) -> None:
    for name, kept in KEPT.items():
        target = home / "sklearn_cirrus" / kept
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(shared / name) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    # read back as the examples will, without a download
    assert fetch_libsvm("a9a", "test", data_home=home, download_if_missing=False)[0].shape[0]
    assert len(fetch_movielens(data_home=home, download_if_missing=False)[1]) == 100_836


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
