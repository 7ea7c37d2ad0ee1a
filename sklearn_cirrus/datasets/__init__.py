"""Data for the estimators: public datasets fetched once, rating files, and generated
problems of the shapes serverless training exists for."""

from ._fetch import LIBSVM_DATASETS, MOVIELENS_DATASETS, fetch_libsvm, fetch_movielens
from ._generated import make_hashed_classification, make_ratings
from ._movielens import load_movielens

__all__ = [
    "LIBSVM_DATASETS",
    "MOVIELENS_DATASETS",
    "fetch_libsvm",
    "fetch_movielens",
    "load_movielens",
    "make_hashed_classification",
    "make_ratings",
]
