"""Collaborative filtering: biased matrix factorization trained by serverless workers.

:class:`ServerlessMatrixFactorization` is a scikit-learn regressor whose ``X`` holds
(user, item) pairs of any hashable ids and whose ``y`` holds ratings. It encodes the ids,
hands a :class:`~sklearn_cirrus.kernels.factorization.FactorizationKernel` to the same
engine as the linear models, and keeps the learned factors and biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._compat import Interval, StrOptions, _check_sample_weight, _fit_context
from .base import (
    ENGINE_PARAMETER_CONSTRAINTS,
    ENGINE_PARAMETERS_DOC,
    MAX_SEED,
    DatasetScoreMixin,
    ServerlessEstimatorMixin,
)
from .data.id_pairs import IdCodes, PairCodes, PairsOf, ShardIds, first_appearances, id_columns
from .dataset import ShardedDataset
from .kernels.factorization import FactorizationKernel
from .store import LEARNING_RATES, OPTIMIZERS, OptimizerConfig


def _pairs(estimator, X, y=None, *, reset: bool):
    """The user and item columns of X (and the ratings), validated by scikit-learn.

    ``validate_data`` keeps any id type (``dtype=None``: strings stay objects), refuses
    sparse, complex, empty, NaN and infinite input with scikit-learn's messages, and
    records or checks ``n_features_in_`` and ``feature_names_in_``, so a DataFrame
    whose columns come in another order than in ``fit`` is refused, not misread.
    """
    if y is None and reset:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    checked = {"dtype": None, "ensure_all_finite": True, "reset": reset}
    if y is None:
        X = validate_data(estimator, X, **checked)
    else:
        X, y = validate_data(estimator, X, y, y_numeric=True, **checked)
        y = y.astype(np.float64, copy=False)
    if X.shape[1] != 2:
        raise ValueError(
            f"X must have 2 columns, (user id, item id) pairs, got {X.shape[1]} columns"
        )
    if X.dtype == object and any(v is None for v in X.ravel()):
        raise ValueError("Input X contains None: every id must be a value")
    return X[:, 0], X[:, 1], y


def _is_numeric(ids: np.ndarray) -> bool:
    return ids.dtype.kind in "biuf"


def _encode(ids: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 in order of first appearance, and the ids in that order."""
    if _is_numeric(ids):  # (sorted, as np.unique does: no Python loop over the ratings)
        uniques, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return rank[inverse].astype(np.int64), uniques[order]
    index: dict = {}
    try:
        codes = np.fromiter((index.setdefault(v, len(index)) for v in ids), np.int64, ids.size)
    except TypeError as exc:
        raise ValueError(f"{what} ids must be hashable: {exc}") from None
    uniques = np.empty(len(index), dtype=ids.dtype if ids.dtype != object else object)
    uniques[:] = list(index)
    return codes, uniques


class _IdCodes:
    """The codes of ids (their positions in ``known``), -1 for unknown ones: by a sorted
    search when both are numbers (predict's hot path: a score at every epoch of a
    search), else by a dict."""

    def __init__(self, known: np.ndarray):
        self.known = known
        self.order = np.argsort(known, kind="stable") if _is_numeric(known) else None
        self.in_order = None if self.order is None else known[self.order]
        self._index = None

    def __call__(self, ids: np.ndarray, what: str) -> np.ndarray:
        if self.order is not None and _is_numeric(ids) and self.known.size:
            at = np.minimum(np.searchsorted(self.in_order, ids), self.in_order.size - 1)
            return np.where(self.in_order[at] == ids, self.order[at], -1).astype(np.int64)
        if self._index is None:
            self._index = {v: j for j, v in enumerate(self.known)}
        try:
            return np.fromiter((self._index.get(v, -1) for v in ids), np.int64, ids.size)
        except TypeError as exc:
            raise ValueError(f"{what} ids must be hashable: {exc}") from None


@dataclass(frozen=True)
class RatingPredictor:
    """Predicted ratings of (user code, item code) pairs, -1 for an unseen id: what
    ``predict`` computes, in the driver or, over a dataset, in the workers."""

    global_mean: float
    user_factors: np.ndarray
    user_bias: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    rating_range: tuple[float, float]

    def of(self, user_codes: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
        known_user, known_item = user_codes >= 0, item_codes >= 0
        prediction = np.full(user_codes.shape[0], self.global_mean)
        prediction[known_user] += self.user_bias[user_codes[known_user]]
        prediction[known_item] += self.item_bias[item_codes[known_item]]
        both = known_user & known_item
        prediction[both] += np.einsum(
            "ij,ij->i",
            self.user_factors[user_codes[both]],
            self.item_factors[item_codes[both]],
        )
        return np.clip(prediction, *self.rating_range)

    def __call__(self, batch) -> np.ndarray:
        pairs = np.asarray(batch.X)
        return self.of(pairs[:, 0], pairs[:, 1])


class ServerlessMatrixFactorization(
    DatasetScoreMixin, ServerlessEstimatorMixin, RegressorMixin, BaseEstimator
):
    __doc__ = f"""Biased matrix factorization for rating prediction, trained by serverless workers.

    A rating is predicted as ``global_mean_ + user_bias_[u] + item_bias_[i] +
    user_factors_[u] @ item_factors_[i]``, learned by asynchronous minibatch SGD on
    ``n_workers`` stateless workers that pull and push only the rows of the users and
    items in their minibatch. Regularisation is applied per rating, as in Funk's SVD and
    Surprise's ``SVD``.

    Parameters
    ----------
    n_components : int, default=50
        Length of the user and item factor vectors, in [1, inf).
    alpha : float, default=0.12
        L2 regularisation of the factors, in [0, inf).
    alpha_bias : float, default=0.02
        L2 regularisation of the biases, in [0, inf).
    init_std : float, default=0.1
        Standard deviation of the initial factors, in [0, inf).
    max_iter : int, default=10
        Maximum number of epochs, in [1, inf). Factors overfit past about ten epochs at
        the default regularisation: on MovieLens latest-small the defaults reach a test
        RMSE of about 0.855 (``docs/benchmarks.md``).
    tol : float or None, default=1e-3
        Stop when the epoch's mean training loss fails to drop by ``tol`` for
        ``n_iter_no_change`` epochs; None runs ``max_iter`` epochs.
    n_iter_no_change : int, default=3
        Epochs without improvement before stopping, in [1, inf).
    learning_rate : {{'constant', 'invscaling', 'adaptive'}}, default='constant'
        Step-size schedule applied by the store (see ``ServerlessSGDClassifier``).
    eta0 : float, default=0.1
        Base step size, in (0, inf).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    optimizer : {{'adagrad', 'sgd', 'momentum', 'nesterov'}}, default='adagrad'
        Update rule of every step: adagrad and the momentum methods keep
        per-coordinate state in the store.
    batch_size : int, default=512
        Ratings per minibatch, in [1, inf).
    shuffle : bool, default=True
        Shuffle the ratings once when staging and the shard order every epoch.
    {ENGINE_PARAMETERS_DOC.strip()}
    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors and the shuffling.
    verbose : int, default=0
        Print one line per epoch when positive.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_components)
    item_factors_ : ndarray of shape (n_items, n_components)
    user_bias_ : ndarray of shape (n_users,)
    item_bias_ : ndarray of shape (n_items,)
    global_mean_ : float
        Mean training rating.
    user_ids_ : ndarray of shape (n_users,)
        The user ids; row ``j`` of ``user_factors_`` belongs to ``user_ids_[j]``.
    item_ids_ : ndarray of shape (n_items,)
        The item ids, likewise.
    rating_range_ : tuple of float
        Smallest and largest training rating; predictions are clipped to it.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss (half squared error) of every epoch.
    fit_report_ : dict
        What the fit cost, as for ``ServerlessSGDClassifier``.

    See Also
    --------
    ServerlessSGDRegressor : Linear regression on the same engine.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cirrus import ServerlessMatrixFactorization
    >>> rng = np.random.RandomState(0)
    >>> users, items = rng.randint(0, 50, 2000), rng.randint(0, 40, 2000)
    >>> ratings = np.clip(3 + (users % 5 - 2) * 0.5 + (items % 3 - 1), 1, 5)
    >>> model = ServerlessMatrixFactorization(n_components=5, random_state=0)
    >>> model.fit(np.column_stack([users, items]), ratings).score(
    ...     np.column_stack([users, items]), ratings) > 0.9
    True
    >>> model.recommend([0], n=3).shape
    (1, 3)
    """

    # fit, predict and score take a ShardedDataset (a search may stage its arrays once)
    _reads_datasets = True

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "alpha_bias": [Interval(Real, 0, None, closed="left")],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(LEARNING_RATES) - {"optimal"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "shuffle": ["boolean"],
        **ENGINE_PARAMETER_CONSTRAINTS,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=50,
        *,
        alpha=0.12,
        alpha_bias=0.02,
        init_std=0.1,
        max_iter=10,
        tol=1e-3,
        n_iter_no_change=3,
        learning_rate="constant",
        eta0=0.1,
        power_t=0.5,
        optimizer="adagrad",
        batch_size=512,
        shuffle=True,
        n_workers=2,
        executor=None,
        store=None,
        data_url=None,
        exchange_every=None,
        significance=None,
        worker_memory_mb=1024,
        worker_timeout=300.0,
        resources="fastest",
        scale_in=False,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.alpha_bias = alpha_bias
        self.init_std = init_std
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.n_workers = n_workers
        self.executor = executor
        self.store = store
        self.data_url = data_url
        self.exchange_every = exchange_every
        self.significance = significance
        self.worker_memory_mb = worker_memory_mb
        self.worker_timeout = worker_timeout
        self.resources = resources
        self.scale_in = scale_in
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn user and item factors from ratings.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2), DataFrame with two columns or ShardedDataset
            (user id, item id) pairs; ids may be any hashable values. A
            :class:`~sklearn_cirrus.ShardedDataset` holds two id columns (whole numbers,
            or categorical columns read as strings) and the ratings as its targets;
            workers read it, the driver holds only the ids' vocabularies.
        y : array-like of shape (n_samples,), default=None
            Ratings; None with a dataset (its targets).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-rating weights; None with a dataset (its own).

        Returns
        -------
        self : object
            The fitted model.
        """
        if isinstance(X, ShardedDataset):
            data = self._read_ratings(X, y, sample_weight)
            y = sample_weight = None
        else:
            users, items, y = _pairs(self, X, y, reset=True)
            sample_weight = _check_sample_weight(sample_weight, y)
            user_codes, self.user_ids_ = _encode(users, "user")
            item_codes, self.item_ids_ = _encode(items, "item")
            self.global_mean_ = float(np.average(y, weights=sample_weight))
            self.rating_range_ = (float(y.min()), float(y.max()))
            data = np.column_stack([user_codes, item_codes])
            # the items each user rated, for recommend(exclude_seen=True)
            self._seen = sp.csr_matrix(
                (np.ones(data.shape[0], dtype=bool), (user_codes, item_codes)),
                shape=(self.user_ids_.size, self.item_ids_.size),
            )
            self._ratings = None
        self._user_index = _IdCodes(self.user_ids_)
        self._item_index = _IdCodes(self.item_ids_)
        kernel = FactorizationKernel(
            n_users=self.user_ids_.size,
            n_items=self.item_ids_.size,
            n_components=self.n_components,
            alpha=self.alpha,
            global_mean=self.global_mean_,
            alpha_bias=self.alpha_bias,
        )
        random_state = check_random_state(self.random_state)
        init = kernel.init_params(random_state, self.init_std)
        optimizer = OptimizerConfig(
            name=self.optimizer,
            eta0=self.eta0,
            learning_rate=self.learning_rate,
            power_t=self.power_t,
        )
        k = self.n_components

        def attributes(state) -> dict:
            """The fitted attributes of a TrainingResult, or of a Checkpoint on the way."""
            params = state.params  # a checkpoint pulls it from the store: once
            users_rows, items_rows = params[kernel.USERS], params[kernel.ITEMS]
            return {
                "user_factors_": users_rows[:, :k].copy(),
                "user_bias_": users_rows[:, k].copy(),
                "item_factors_": items_rows[:, :k].copy(),
                "item_bias_": items_rows[:, k].copy(),
                "n_iter_": state.n_iter,
                "loss_curve_": state.loss_curve,
                "fit_report_": state.report,
            }

        self._fit_engine(
            kernel,
            data,
            y,
            sample_weight,
            optimizer=optimizer,
            init=init,
            attributes=attributes,
            seed=random_state.randint(MAX_SEED),
        )
        return self

    def predict(self, X):
        """Predict ratings, clipped to ``rating_range_``.

        A user or item unseen in training contributes nothing but the other's bias:
        the prediction falls back to the global mean plus whatever bias is known.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2), DataFrame with two columns or ShardedDataset
            (user id, item id) pairs; a dataset's are predicted by the workers.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted ratings.
        """
        check_is_fitted(self)
        predictor = RatingPredictor(
            self.global_mean_,
            self.user_factors_,
            self.user_bias_,
            self.item_factors_,
            self.item_bias_,
            self.rating_range_,
        )
        if isinstance(X, ShardedDataset):
            self._check_dataset(X, reset=False)
            return self._map_dataset(self._coded(X), predictor)
        users, items, _ = _pairs(self, X, reset=False)
        return predictor.of(self._user_index(users, "user"), self._item_index(items, "item"))

    def _coded(self, dataset: ShardedDataset) -> ShardedDataset:
        """The dataset as workers read it for this model: ids as their codes."""
        codes = PairCodes(IdCodes.of(self.user_ids_), IdCodes.of(self.item_ids_))
        return dataset.with_transform(codes, n_features=2, sparse=False)

    def _read_ratings(self, dataset: ShardedDataset, y, sample_weight) -> ShardedDataset:
        """Learn from a dataset's shards, read by workers, what ``fit`` learns from
        arrays before training (ids, mean and range of the ratings); return the
        dataset as training reads it."""
        self._check_dataset(dataset, y, sample_weight, reset=True)
        if not dataset.has_targets:
            raise ValueError(f"{dataset!r} has no targets: fit needs the ratings")
        if dataset.sparse or dataset.n_features != 2:
            raise ValueError(f"X must have 2 columns, (user id, item id) pairs, got {dataset!r}")
        columns = dataset.columns
        if columns is not None and len(columns["numeric"]) == 1:
            raise ValueError(
                "the user and item id columns must be both numbers or both categorical, "
                f"got numeric {columns['numeric']} and categorical {columns['categorical']}"
            )
        raw = dataset.with_transform(id_columns, n_features=2, sparse=False)
        parts = self._shard_results(raw, ShardIds())
        try:
            self.user_ids_ = first_appearances(np.concatenate([p["users"] for p in parts]))
            self.item_ids_ = first_appearances(np.concatenate([p["items"] for p in parts]))
            total = sum(p["weight"] for p in parts)
            self.global_mean_ = sum(p["weighted"] for p in parts) / total
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the ratings of {dataset!r} cannot be read: {exc}") from None
        self.rating_range_ = (min(p["low"] for p in parts), max(p["high"] for p in parts))
        self._seen, self._ratings = None, self._coded(dataset)
        return self._ratings

    def _seen_items(self, codes: np.ndarray) -> list[np.ndarray]:
        """The items each user of ``codes`` rated in training (none for -1)."""
        if self._seen is not None:
            return [self._seen[code].indices if code >= 0 else codes[:0] for code in codes]
        # fitted on a dataset: the workers find the pairs of these users in its shards
        if not self._ratings.exists():
            raise FileNotFoundError(
                f"the ratings this model was fitted on ({self._ratings.url}) are gone: "
                "recommend(..., exclude_seen=False) needs none, or fit again"
            )
        pairs = self._shard_results(self._ratings, PairsOf(np.unique(codes[codes >= 0])))
        pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
        return [pairs[pairs[:, 0] == code, 1] for code in codes]

    def recommend(self, users, n: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """The ``n`` items with the highest predicted rating for each user.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            User ids. An unknown user gets the items with the highest bias.
        n : int, default=10
            Items per user (fewer columns if fewer items remain).
        exclude_seen : bool, default=True
            Leave out the items a user rated in training (after a fit on a
            :class:`~sklearn_cirrus.ShardedDataset`, read from it by the workers).

        Returns
        -------
        ndarray of shape (n_users, n)
            Item ids, best first.
        """
        check_is_fitted(self)
        users = np.asarray(users)
        codes = self._user_index(users.ravel(), "user")
        n = min(n, self.item_ids_.size)
        best = np.empty((codes.size, n), dtype=np.int64)
        seen = self._seen_items(codes) if exclude_seen else None
        for row, code in enumerate(codes):
            scores = self.item_bias_.copy()
            if code >= 0:
                scores += self.item_factors_ @ self.user_factors_[code]
                if exclude_seen:
                    scores[seen[row]] = -np.inf
            top = np.argpartition(-scores, n - 1)[:n]
            best[row] = top[np.argsort(-scores[top], kind="stable")]
        return self.item_ids_[best]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
