"""Preprocessing that runs in the workers: scikit-learn transformers that also take datasets.

On in-memory data each transformer is scikit-learn's own (or computes what it does). On a
:class:`~sklearn_cirrus.ShardedDataset`, ``transform`` returns a view whose shards the
workers transform as they read them, so that in ``make_pipeline(hasher, scaler, clf)``
fitted on a dataset the driver never holds X; a scaler's ``fit`` is a map-reduce of
per-shard statistics computed by the workers.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, StandardScaler

from ._compat import Interval, _handle_zeros_in_scale, _is_constant_feature
from .data.columns import (
    ColumnScaling,
    ColumnStatistics,
    RowNormalization,
    column_statistics,
    combine_statistics,
)
from .data.table import Table, TableHasher
from .dataset import ShardedDataset
from .executors import Executor
from .runtime.mapping import reduce_shards

_WORKER_CONSTRAINTS: dict = {
    "executor": [str, Executor, None],
    "n_workers": [Interval(Integral, 1, None, closed="left")],
}

_WORKER_PARAMETERS_DOC = """
    executor : str, Executor or None, default=None
        Where the workers that compute the statistics of a dataset run, as the
        estimators' parameter (None: threads of this process).
    n_workers : int, default=2
        Worker invocations in flight while fitting on a dataset.
"""


class ServerlessFeatureHasher(TransformerMixin, BaseEstimator):
    """Hash raw table columns into a sparse matrix, in the workers' readers.

    scikit-learn's :class:`~sklearn.feature_extraction.FeatureHasher` with
    ``input_type="dict"``, one dict a row ``{column: value}``: a number hashes its
    column's name and keeps its value, a string hashes ``"column=value"`` with value 1
    (signed 32-bit MurmurHash3, so a row hashes the same way in both). Missing cells
    (empty strings, NaN or None) are left out. Numbers are float32, as a dataset's
    shards keep them.

    Parameters
    ----------
    n_features : int, default=2**20
        Columns of the output, in [1, 2**31 - 1].
    alternate_sign : bool, default=True
        Give a feature the sign of its hash, so that collisions cancel on average.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_cirrus.preprocessing import ServerlessFeatureHasher
    >>> clicks = pd.DataFrame({"count": [3, 0], "site": ["a1", "b2"]})
    >>> ServerlessFeatureHasher(n_features=16).fit_transform(clicks).shape
    (2, 16)
    """

    _parameter_constraints: dict = {
        "n_features": [Interval(Integral, 1, np.iinfo(np.int32).max, closed="both")],
        "alternate_sign": ["boolean"],
    }

    def __init__(self, n_features=2**20, alternate_sign=True):
        self.n_features = n_features
        self.alternate_sign = alternate_sign

    def fit(self, X=None, y=None):
        """Check the parameters; hashing learns nothing.

        Parameters
        ----------
        X : ShardedDataset, DataFrame or None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        return self

    def transform(self, X):
        """Hash the rows of ``X``.

        Parameters
        ----------
        X : ShardedDataset or pandas.DataFrame
            A dataset of raw columns (``ShardedDataset.from_csv``), or a DataFrame.

        Returns
        -------
        ShardedDataset or scipy.sparse.csr_matrix of shape (n_samples, n_features)
            A view of the dataset that the workers hash as they read it, or the hashed
            rows.
        """
        hasher = TableHasher(self.n_features, self.alternate_sign)
        if isinstance(X, ShardedDataset):
            if X.columns is None or X.transforms:
                raise ValueError(
                    "ServerlessFeatureHasher hashes a dataset's raw columns: give it a "
                    "dataset written by ShardedDataset.from_csv (or from_parquet), first in "
                    "the pipeline"
                )
            return X.with_transform(hasher, n_features=self.n_features, sparse=True)
        if not hasattr(X, "columns") or not hasattr(X, "to_numpy"):
            raise TypeError(
                f"ServerlessFeatureHasher takes a ShardedDataset or a pandas DataFrame, not "
                f"{type(X).__name__}"
            )
        return hasher(Table.from_frame(X)).tocsr()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.dataframe = True
        return tags


class _DatasetScalerMixin:
    """Fit on a dataset as a map-reduce of column statistics over its shards; transform a
    dataset into a view the workers scale as they read. Arrays go to scikit-learn."""

    def _statistics(self, dataset: ShardedDataset) -> ColumnStatistics:
        if dataset.columns is not None and not dataset.transforms:
            dataset.handle()  # a table of raw columns is refused there, with the reason
        statistics = reduce_shards(
            dataset.handle(),
            column_statistics,
            combine_statistics,
            executor=self.executor,
            n_workers=self.n_workers,
        )
        self.n_features_in_ = dataset.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        count = statistics.count
        self.n_samples_seen_ = int(count[0]) if np.all(count == count[0]) else count.astype(int)
        return statistics

    def _scaled(self, dataset: ShardedDataset, scaling) -> ShardedDataset:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if dataset.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {dataset.n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return dataset.with_transform(scaling, n_features=dataset.n_features, sparse=dataset.sparse)


class ServerlessStandardScaler(_DatasetScalerMixin, StandardScaler):
    __doc__ = f"""scikit-learn's :class:`~sklearn.preprocessing.StandardScaler`, fitted by workers
    on a dataset.

    On arrays, it is scikit-learn's. On a :class:`~sklearn_cirrus.ShardedDataset`,
    ``fit`` computes the mean and variance of every column as a map-reduce over the
    shards (counts, means and squared deviations merged exactly), and ``transform``
    returns a view the workers scale as they read it. Sparse data takes
    ``with_mean=False``, as in scikit-learn.

    Parameters
    ----------
    copy : bool, default=True
        As in scikit-learn (arrays only).
    with_mean : bool, default=True
        Center the columns.
    with_std : bool, default=True
        Scale the columns to unit variance.
    {_WORKER_PARAMETERS_DOC.strip()}

    Attributes
    ----------
    mean_, var_, scale_, n_samples_seen_, n_features_in_
        As in scikit-learn.
    """

    _parameter_constraints: dict = {**StandardScaler._parameter_constraints, **_WORKER_CONSTRAINTS}

    def __init__(self, *, copy=True, with_mean=True, with_std=True, executor=None, n_workers=2):
        super().__init__(copy=copy, with_mean=with_mean, with_std=with_std)
        self.executor = executor
        self.n_workers = n_workers

    def fit(self, X, y=None, sample_weight=None):
        """Compute the mean and standard deviation of every column.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} or ShardedDataset
            The data; a dataset's statistics are computed by workers.
        y : None
            Ignored.
        sample_weight : array-like or None, default=None
            Per-sample weights (arrays only).

        Returns
        -------
        self : object
        """
        if not isinstance(X, ShardedDataset):
            return super().fit(X, y, sample_weight)
        self._validate_params()
        if sample_weight is not None:
            raise ValueError("sample_weight is for arrays; a dataset's rows count once")
        if self.with_mean and X.sparse:
            raise ValueError(
                "Cannot center sparse matrices: pass `with_mean=False` instead. See docstring "
                "for motivation and alternatives."
            )
        statistics = self._statistics(X)
        self.mean_ = statistics.mean if (self.with_mean or self.with_std) else None
        self.var_ = statistics.variance if self.with_std else None
        self.scale_ = None
        if self.with_std:
            constant = _is_constant_feature(self.var_, self.mean_, statistics.count)
            self.scale_ = _handle_zeros_in_scale(
                np.sqrt(self.var_), copy=False, constant_mask=constant
            )
        return self

    def transform(self, X, copy=None):
        """Scale ``X``: arrays at once, a dataset as a view the workers scale.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} or ShardedDataset
            The data.
        copy : bool or None, default=None
            As in scikit-learn (arrays only).

        Returns
        -------
        ndarray, sparse matrix or ShardedDataset
        """
        if not isinstance(X, ShardedDataset):
            return super().transform(X, copy=copy)
        return self._scaled(
            X,
            ColumnScaling(
                subtract=self.mean_ if self.with_mean else None,
                divide=self.scale_ if self.with_std else None,
            ),
        )


class ServerlessMinMaxScaler(_DatasetScalerMixin, MinMaxScaler):
    __doc__ = f"""scikit-learn's :class:`~sklearn.preprocessing.MinMaxScaler`, fitted by workers
    on a dataset.

    On arrays, it is scikit-learn's; on a :class:`~sklearn_cirrus.ShardedDataset`, the
    minimum and maximum of every column are a map-reduce over the shards and
    ``transform`` returns a view the workers scale. Like scikit-learn's, it refuses
    sparse data (use :class:`ServerlessMaxAbsScaler`).

    Parameters
    ----------
    feature_range : tuple (min, max), default=(0, 1)
        Range of the transformed data.
    copy : bool, default=True
        As in scikit-learn (arrays only).
    clip : bool, default=False
        Clip transformed values to ``feature_range``.
    {_WORKER_PARAMETERS_DOC.strip()}

    Attributes
    ----------
    min_, scale_, data_min_, data_max_, data_range_, n_samples_seen_, n_features_in_
        As in scikit-learn.
    """

    _parameter_constraints: dict = {**MinMaxScaler._parameter_constraints, **_WORKER_CONSTRAINTS}

    def __init__(self, feature_range=(0, 1), *, copy=True, clip=False, executor=None, n_workers=2):
        super().__init__(feature_range=feature_range, copy=copy, clip=clip)
        self.executor = executor
        self.n_workers = n_workers

    def fit(self, X, y=None):
        """Compute the minimum and maximum of every column.

        Parameters
        ----------
        X : array-like or ShardedDataset
            The data; a dataset's statistics are computed by workers.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        if not isinstance(X, ShardedDataset):
            return super().fit(X, y)
        self._validate_params()
        if X.sparse:
            raise TypeError(
                "MinMaxScaler does not support sparse input. Consider using MaxAbsScaler instead."
            )
        low, high = self.feature_range
        if low >= high:
            raise ValueError(
                f"Minimum of desired feature range must be smaller than maximum. Got "
                f"{self.feature_range}."
            )
        statistics = self._statistics(X)
        self.data_min_, self.data_max_ = statistics.minimum, statistics.maximum
        self.data_range_ = self.data_max_ - self.data_min_
        self.scale_ = (high - low) / _handle_zeros_in_scale(self.data_range_, copy=True)
        self.min_ = low - self.data_min_ * self.scale_
        return self

    def transform(self, X):
        """Scale ``X``: arrays at once, a dataset as a view the workers scale.

        Parameters
        ----------
        X : array-like or ShardedDataset
            The data.

        Returns
        -------
        ndarray or ShardedDataset
        """
        if not isinstance(X, ShardedDataset):
            return super().transform(X)
        clip = tuple(self.feature_range) if self.clip else None
        return self._scaled(X, ColumnScaling(multiply=self.scale_, add=self.min_, clip=clip))


class ServerlessMaxAbsScaler(_DatasetScalerMixin, MaxAbsScaler):
    __doc__ = f"""scikit-learn's :class:`~sklearn.preprocessing.MaxAbsScaler`, fitted by workers
    on a dataset.

    On arrays, it is scikit-learn's; on a :class:`~sklearn_cirrus.ShardedDataset`, the
    largest absolute value of every column is a map-reduce over the shards and
    ``transform`` returns a view the workers scale. It keeps sparse data sparse: the
    scaler for hashed features.

    Parameters
    ----------
    copy : bool, default=True
        As in scikit-learn (arrays only).
    clip : bool, default=False
        Clip transformed values to [-1, 1].
    {_WORKER_PARAMETERS_DOC.strip()}

    Attributes
    ----------
    max_abs_, scale_, n_samples_seen_, n_features_in_
        As in scikit-learn.
    """

    _parameter_constraints: dict = {**MaxAbsScaler._parameter_constraints, **_WORKER_CONSTRAINTS}

    def __init__(self, *, copy=True, clip=False, executor=None, n_workers=2):
        super().__init__(copy=copy, clip=clip)
        self.executor = executor
        self.n_workers = n_workers

    def fit(self, X, y=None):
        """Compute the largest absolute value of every column.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} or ShardedDataset
            The data; a dataset's statistics are computed by workers.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        if not isinstance(X, ShardedDataset):
            return super().fit(X, y)
        self._validate_params()
        statistics = self._statistics(X)
        self.max_abs_ = np.maximum(np.abs(statistics.minimum), np.abs(statistics.maximum))
        self.scale_ = _handle_zeros_in_scale(self.max_abs_, copy=True)
        return self

    def transform(self, X):
        """Scale ``X``: arrays at once, a dataset as a view the workers scale.

        Parameters
        ----------
        X : {{array-like, sparse matrix}} or ShardedDataset
            The data.

        Returns
        -------
        ndarray, sparse matrix or ShardedDataset
        """
        if not isinstance(X, ShardedDataset):
            return super().transform(X)
        return self._scaled(
            X, ColumnScaling(divide=self.scale_, clip=(-1.0, 1.0) if self.clip else None)
        )


class ServerlessNormalizer(Normalizer):
    """scikit-learn's :class:`~sklearn.preprocessing.Normalizer`, run by the workers'
    readers on a dataset.

    On arrays, it is scikit-learn's; on a :class:`~sklearn_cirrus.ShardedDataset`,
    ``transform`` returns a view whose rows the workers scale to unit norm.

    Parameters
    ----------
    norm : {'l1', 'l2', 'max'}, default='l2'
        The norm each row is scaled to one of.
    copy : bool, default=True
        As in scikit-learn (arrays only).
    """

    def fit(self, X, y=None):
        """Record the width of ``X``; normalising learns nothing.

        Parameters
        ----------
        X : {array-like, sparse matrix} or ShardedDataset
            The data.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        if not isinstance(X, ShardedDataset):
            return super().fit(X, y)
        self._validate_params()
        self.n_features_in_ = X.n_features
        return self

    def transform(self, X, copy=None):
        """Scale every row of ``X`` to unit norm.

        Parameters
        ----------
        X : {array-like, sparse matrix} or ShardedDataset
            The data.
        copy : bool or None, default=None
            As in scikit-learn (arrays only).

        Returns
        -------
        ndarray, sparse matrix or ShardedDataset
        """
        if not isinstance(X, ShardedDataset):
            return super().transform(X, copy=copy)
        return X.with_transform(
            RowNormalization(self.norm), n_features=X.n_features, sparse=X.sparse
        )
