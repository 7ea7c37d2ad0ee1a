"""Linear models trained by asynchronous SGD on serverless workers.

The classes translate scikit-learn's ``SGDClassifier`` / ``SGDRegressor`` parameters
into a :class:`~sklearn_cirrus.kernels.LinearKernel` and
:class:`~sklearn_cirrus.store.OptimizerConfig`, and hand the work to the engine through
:class:`~sklearn_cirrus.base.ServerlessEstimatorMixin`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._compat import (
    Interval,
    LinearClassifierMixin,
    SparseCoefMixin,
    StrOptions,
    _check_partial_fit_first_call,
    _check_sample_weight,
    _fit_context,
)
from .base import (
    ENGINE_PARAMETER_CONSTRAINTS,
    ENGINE_PARAMETERS_DOC,
    MAX_SEED,
    DatasetScoreMixin,
    ServerlessEstimatorMixin,
    dataset_of_dask,
    is_dask_collection,
)
from .data.writing import MAX_LABELS
from .dataset import ShardedDataset
from .kernels import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, LinearKernel, loss_values
from .kernels.linear import ShardScores
from .store import LEARNING_RATES, OPTIMIZERS, OptimizerConfig


class _BaseServerlessSGD(ServerlessEstimatorMixin, BaseEstimator):
    """Parameters, validation and the hand-off to the engine shared by both models."""

    # fit, predict and score take a ShardedDataset (a search may stage its arrays once)
    _reads_datasets = True

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "shuffle": ["boolean"],
        "verbose": ["verbose"],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "learning_rate": [StrOptions(set(LEARNING_RATES))],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "average": [Interval(Integral, 0, None, closed="left"), "boolean"],
        **ENGINE_PARAMETER_CONSTRAINTS,
        "optimizer": [StrOptions(set(OPTIMIZERS))],
    }

    def _validate_arrays(self, X, y, reset: bool, **checks):
        """``validate_data`` for in-memory training data (CSR or dense, C order)."""
        return validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],  # float32 stays float32 in the shards
            order="C",
            accept_large_sparse=True,
            reset=reset,
            **checks,
        )

    def _check_parameter_combination(self, for_partial_fit: bool = False) -> None:
        if self.early_stopping and for_partial_fit:
            raise ValueError("early_stopping should be False with partial_fit")
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError(
                "alpha must be > 0 since learning_rate is 'optimal'. alpha is used to "
                "compute the optimal learning rate."
            )

    def _optimizer_config(self, step_scale: float = 1.0) -> OptimizerConfig:
        # scikit-learn's heuristic for the first step of the 'optimal' schedule
        typical_weight = np.sqrt(1.0 / np.sqrt(self.alpha)) if self.alpha > 0 else 1.0
        _, dloss = loss_values(self.loss, -typical_weight, 1.0, self.epsilon)
        initial_eta = typical_weight / max(1.0, abs(float(dloss[0])))
        return OptimizerConfig(
            name=self.optimizer,
            eta0=self.eta0,
            learning_rate=self.learning_rate,
            power_t=self.power_t,
            alpha=self.alpha,
            optimal_init=1.0 / (initial_eta * self.alpha) if self.alpha > 0 else 1.0,
            step_scale=step_scale,
        )

    def _step_scale(self, mean_square, resume: bool) -> float:
        """The units of the weights (``OptimizerConfig.step_scale``); a class's margin.
        ``mean_square()`` gives the targets' (weighted) mean square."""
        return 1.0

    def _validation_split(self, y: np.ndarray, sample_weight: np.ndarray, stratify: bool):
        """Boolean mask of the held-out rows for early stopping (none without it)."""
        mask = np.zeros(y.shape[0], dtype=bool)
        if not self.early_stopping:
            return mask
        splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
            test_size=self.validation_fraction, random_state=self.random_state
        )
        train_rows, validation_rows = next(splitter.split(np.zeros((y.shape[0], 1)), y))
        if train_rows.size == 0 or validation_rows.size == 0:
            raise ValueError(
                f"Splitting {y.shape[0]} samples into a train set and a validation set with "
                f"validation_fraction={self.validation_fraction} led to an empty set."
            )
        if not np.any(sample_weight[validation_rows] > 0):
            raise ValueError(
                "The sample weights for validation set are all zero, consider using a "
                "different random state."
            )
        mask[validation_rows] = True
        return mask

    def _train(
        self,
        kernel: LinearKernel,
        X,
        y,
        sample_weight,
        *,
        max_iter: int,
        stratify: bool,
        score,
        partial: bool,
        coef_init=None,
        intercept_init=None,
    ):
        """Run the engine and store the fitted attributes; ``score(y, pred, w)`` rates a split.

        ``X`` is arrays, or a dataset whose targets ``y`` sums up (a TargetSummary).
        """
        resume = partial and hasattr(self, "coef_")
        dataset = isinstance(X, ShardedDataset)
        step_scale = self._step_scale(
            lambda: (
                y.mean_square
                if dataset
                else np.average(
                    np.square(y), weights=sample_weight if np.any(sample_weight > 0) else None
                )
            ),
            resume,
        )
        validation_score = None
        if self.early_stopping and not partial:
            # a dataset's targets and weights come to the driver for the split, never X
            targets, weights = (
                (self._encode(X.targets()), X.sample_weights()) if dataset else (y, sample_weight)
            )
            validation = self._validation_split(targets, weights, stratify)
            X_val, y_val, w_val = X[validation], targets[validation], weights[validation]

            def validation_score(params):
                predicted = self._predict_from_params(kernel, params, X_val)
                return score(y_val, predicted, sample_weight=w_val)

            X = X[~validation]
            if not dataset:
                y, sample_weight = y[~validation], sample_weight[~validation]
        earlier_curve = list(self.loss_curve_) if resume else []

        def attributes(state) -> dict:
            """The fitted attributes of a TrainingResult, or of a Checkpoint on the way."""
            coef, intercept = self._shape_coef(*kernel.split_params(state.params))
            return {
                "coef_": coef,
                "intercept_": intercept,
                "n_iter_": state.n_iter,
                "loss_curve_": earlier_curve + state.loss_curve,
                "validation_scores_": state.validation_scores,
                "fit_report_": state.report,
            }

        result = self._fit_engine(
            kernel,
            X,
            y,
            sample_weight,
            optimizer=self._optimizer_config(step_scale),
            # partial_fit continues the last call's model (and its average)
            init=(
                kernel.resume_params(self._fitted_params)
                if resume
                else kernel.init_params(coef_init, intercept_init)
            ),
            attributes=attributes,
            seed=check_random_state(self.random_state).randint(MAX_SEED),
            max_iter=max_iter,
            validation_score=validation_score,
            optimizer_state=self._optimizer_state if resume else None,
            samples_seen=self.t_ - 1 if resume else 0.0,
            # partial_fit is one epoch of a longer fit: only fit is a callback task
            is_fit_task=not partial,
            classes=getattr(self, "classes_", None),
        )
        self._optimizer_state = result.optimizer_state
        self._fitted_params = result.params
        self.t_ = result.samples_seen + 1.0
        return self

    def _shape_coef(self, coef, intercept):
        return coef, intercept

    def _scores(self, scores: ShardScores, X) -> np.ndarray:
        """Raw predictions of a model over arrays, or over a dataset by the workers."""
        if isinstance(X, ShardedDataset):
            return self._map_dataset(X, scores)
        return scores.of(X)

    def _predict_from_params(self, kernel: LinearKernel, params, X):
        return self._decide(self._scores(kernel.scores(params), X))

    def _fitted_scores(self, X) -> np.ndarray:
        """Raw predictions of the fitted model over a dataset ``X``."""
        check_is_fitted(self)
        self._check_dataset(X, reset=False)
        return self._scores(ShardScores.from_coef(self.coef_, self.intercept_), X)

    def _last_iterate(self):
        """``(coef, intercept)`` of the last fit's own model: with ``average``, the model
        the steps moved, not the average that ``coef_`` holds (where a warm start goes on)."""
        model = self._fitted_params[LinearKernel.KEY]
        return np.ascontiguousarray(model[:-1].T), model[-1].copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_COMMON_PARAMETERS_DOC = """
    penalty : {'l2', 'l1', 'elasticnet'} or None, default='l2'
        The regularization term, as in scikit-learn, applied at every step to every
        weight, so that the model minimises the same objective as ``SGDClassifier``.
        Workers apply it lazily: a weight owes the decay of the steps that did not
        touch it and pays it in closed form when next touched or read. L1 and
        elastic net give exact zeros.
    alpha : float, default=0.0001
        Regularization strength, in [0, inf).
    l1_ratio : float, default=0.15
        Elastic net mixing, in [0, 1]; used with ``penalty='elasticnet'``.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the training data), in [1, inf).
    tol : float or None, default=1e-3
        Stop when the epoch's loss (or validation score, with ``early_stopping``)
        fails to improve by ``tol`` for ``n_iter_no_change`` epochs; None never stops
        early.
    shuffle : bool, default=True
        Shuffle the rows once when staging and the shard order every epoch.
    verbose : int, default=0
        Print one line per epoch when positive.
    epsilon : float, default=0.1
        Margin of the 'huber', 'epsilon_insensitive' and
        'squared_epsilon_insensitive' losses, in [0, inf).
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling and the validation split.
    learning_rate : {'constant', 'optimal', 'invscaling', 'adaptive'}, default='constant'
        Step-size schedule of every step, with ``t`` counting samples seen:
        ``eta0``; ``1 / (alpha * (t0 + t))``; ``eta0 / (t + 1) ** power_t``;
        ``eta0`` divided by 5 each time ``n_iter_no_change`` epochs bring no
        progress. The per-coordinate ``optimizer`` multiplies into it.

        Not scikit-learn's default ('optimal' for ``SGDClassifier``, 'invscaling'
        for ``SGDRegressor``): with the default ``optimizer='adagrad'`` each
        coordinate's step already shrinks with its own gradients, and a constant
        base step does best. Measured (docs/benchmarks.md): on a 1M-row hashed
        click-log problem the defaults end at test log-loss 0.4789 where
        ``SGDClassifier``'s end at 0.4791 (``alpha=1e-4``), and 0.4603 against
        0.4629 (``alpha=1e-5``); on a9a 0.3241 against 0.3266.
    eta0 : float, default=0.1
        Base step size, in (0, inf). scikit-learn's is 0.01, a step for plain SGD;
        AdaGrad's steps are ``eta0 / sqrt(sum of squared gradients)``, and 0.1 is
        the best of 0.1, 0.2 and 0.5 on a9a and a 400k-row click-log problem (0.2-0.5 suit w8a
        better, but slow the click-log problem's first epochs at ``alpha=1e-5``).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule, in [0, inf).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when the
        validation score stops improving.
    validation_fraction : float, default=0.1
        Proportion held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping, in [1, inf).
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    average : bool or int, default=False
        Averaged SGD, as in scikit-learn: ``coef_`` and ``intercept_`` are the average
        of the model over every step (True) or over the steps from the one that brings
        the samples seen to ``average`` on (an int). Averaging is per minibatch step
        and lazy: a row a step does not touch joins the average when next touched or
        read, exactly for a constant step size (docs/architecture.md).
    batch_size : int, default=256
        Samples per minibatch, in [1, inf). scikit-learn's SGD takes one sample a
        step; a worker's step is a minibatch's mean gradient, which amortises its
        work on the model's rows (64-256 give the same quality on a9a and w8a).
    optimizer : {'adagrad', 'sgd', 'momentum', 'nesterov'}, default='adagrad'
        Update rule of every step; adagrad and the momentum methods keep
        per-coordinate state in the store. 'sgd' is scikit-learn's rule; adagrad
        is the default because rare features (most of a hashed model) get large
        steps and frequent ones small, which suits sparse data and asynchronous
        workers. It is the one that reaches a loss first: on a 1M-row hashed
        click-log problem (2 process workers, benchmarks/bench_optimizers.py)
        it reached ``SGDClassifier``'s test log-loss in 0.52x its time at
        ``alpha=1e-4`` and 0.16x at 1e-5, where 'sgd' (any of its schedules) and
        'momentum' stayed above it for 8 epochs, though 'sgd' trains 1.3-1.7x
        more samples a second. With a penalty, adagrad takes a
        proximal step per coordinate and the momentum methods apply it outside
        the velocity (docs/architecture.md, Regularisation).
""" + ENGINE_PARAMETERS_DOC.lstrip("\n")

_COMMON_ATTRIBUTES_DOC = """
    n_iter_ : int
        Epochs run before the stopping criterion was met.
    t_ : float
        Samples pushed to the store in the last fit, plus one (the ``t`` of the
        schedules).
    loss_curve_ : list of float
        Mean training loss of every epoch.
    validation_scores_ : list of float
        Validation score of every epoch with ``early_stopping``; empty otherwise.
    fit_report_ : dict
        What the fit cost: ``invocations``, ``failures`` (relaunched or not; the last
        ones' ``failure_reasons``), ``relaunches`` (after a failure, or on the rest of
        a shard a worker ran out of time on), ``store_losses``, ``in_flight``
        (invocations running when the report was made: 0 once fitted, the live count
        in a fit callback's ``fitted_estimator``), ``samples``, ``updates``
        (minibatch steps applied to the model), ``worker_seconds``,
        ``worker_cpu_seconds`` (the CPU time of the workers' processes as they ran:
        what a CPU quota counts; with thread workers, their whole process's), ``gb_seconds``,
        ``estimated_cost_usd`` (AWS Lambda prices), ``peak_worker_memory_mb``,
        ``wall_seconds`` (the whole fit),
        ``seconds_staging`` (cutting the data into shards, in the driver) and
        ``seconds_io``/``_pull``/``_compute``/``_push`` summed over workers.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
"""


def _check_proba(self):
    if self.loss not in ("log_loss", "modified_huber"):
        raise AttributeError(f"probability estimates are not available for loss={self.loss!r}")
    return True


def _check_one_label_type(y: np.ndarray) -> None:
    """Labels of mixed types (1 and "1") cannot be sorted into classes: say which."""
    if y.dtype != object:
        return
    strings = [isinstance(label, str) for label in y]
    if any(strings) and not all(strings):
        kinds = {type(label).__name__ for label in y}
        raise ValueError(
            f"y mixes labels of types {sorted(kinds)}: classes must all be numbers or all "
            "strings (e.g. y.astype(str))"
        )


class ServerlessSGDClassifier(
    DatasetScoreMixin, LinearClassifierMixin, SparseCoefMixin, _BaseServerlessSGD
):
    __doc__ = f"""Linear classifier trained by asynchronous SGD on serverless workers.

    The scikit-learn counterpart is :class:`sklearn.linear_model.SGDClassifier`:
    the same losses and penalties, one-vs-rest for more than two classes. ``fit``
    stages the data as shards, starts a parameter store, and keeps ``n_workers``
    stateless workers training on them: each runs a compiled SGD loop over its
    shards that updates the weights its minibatches touch, in place in a local
    store (lock-free), or on pulled rows it adds back to a remote one.

    Parameters
    ----------
    loss : {{'log_loss', 'hinge', 'modified_huber', 'squared_hinge', 'perceptron', \
'squared_error', 'huber', 'epsilon_insensitive', 'squared_epsilon_insensitive'}}, \
default='log_loss'
        The loss; 'log_loss' and 'modified_huber' give probability estimates.
    {_COMMON_PARAMETERS_DOC.strip()}
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in scikit-learn.
    n_jobs : int or None, default=None
        The number of workers, when given, in place of ``n_workers``: as in
        ``SGDClassifier``, how many CPUs work on the fit (joblib's convention: -1 is
        every CPU of this machine). None leaves ``n_workers`` in charge. The classes
        of a multiclass problem train together in one model, so there is no
        per-class parallelism to share out.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights of the features.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    {_COMMON_ATTRIBUTES_DOC.strip()}

    See Also
    --------
    sklearn.linear_model.SGDClassifier : The in-process, single-threaded original.
    ServerlessSGDRegressor : The same engine for regression.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_cirrus import ServerlessSGDClassifier
    >>> X, y = make_classification(n_samples=2000, random_state=0)
    >>> clf = ServerlessSGDClassifier(n_workers=2, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> clf.fit_report_["path"]  # small data trains in this process
    'in-process'
    """

    _parameter_constraints: dict = {
        **_BaseServerlessSGD._parameter_constraints,
        "loss": [StrOptions(set(CLASSIFICATION_LOSSES))],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        loss="log_loss",
        *,
        penalty="l2",
        alpha=0.0001,
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-3,
        shuffle=True,
        verbose=0,
        epsilon=0.1,
        random_state=None,
        learning_rate="constant",
        eta0=0.1,
        power_t=0.5,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        n_jobs=None,
        warm_start=False,
        average=False,
        n_workers=2,
        executor=None,
        store=None,
        data_url=None,
        batch_size=256,
        optimizer="adagrad",
        exchange_every=None,
        significance=None,
        worker_memory_mb=1024,
        worker_timeout=300.0,
        resources="fastest",
        scale_in=False,
    ):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.warm_start = warm_start
        self.average = average
        self.n_workers = n_workers
        self.executor = executor
        self.store = store
        self.data_url = data_url
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.exchange_every = exchange_every
        self.significance = significance
        self.worker_memory_mb = worker_memory_mb
        self.worker_timeout = worker_timeout
        self.resources = resources
        self.scale_in = scale_in

    def _validate(self, X, y, reset: bool):
        X, y = self._validate_arrays(X, y, reset)
        _check_one_label_type(y)
        check_classification_targets(y)
        return X, y

    def _fit_classes(
        self, X, y, sample_weight, *, max_iter, partial, coef_init=None, intercept_init=None
    ):
        """Train on arrays, or on a dataset whose targets ``y`` sums up."""
        n_classes = self.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(
                f"The number of classes has to be greater than one; got {n_classes} class"
            )
        if isinstance(X, ShardedDataset):
            unseen = np.setdiff1d(y.labels, self.classes_)
            if unseen.size:
                raise ValueError(f"the dataset has labels {unseen.tolist()} not in classes")
            counts = np.zeros(n_classes)
            counts[np.searchsorted(self.classes_, y.labels)] = y.counts
            # what 'balanced' computes from y, from the counts of its labels
            class_weight = compute_class_weight(
                self.class_weight, classes=self.classes_, y=self.classes_, sample_weight=counts
            )
            y_index = y  # the workers encode the labels
        else:
            class_weight = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            sample_weight = _check_sample_weight(sample_weight, X)
            y_index = np.searchsorted(self.classes_, y)
        binary = n_classes == 2
        kernel = LinearKernel(
            loss=self.loss,
            n_features=self.n_features_in_,
            n_outputs=1 if binary else n_classes,
            classification=True,
            penalty=self.penalty,
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            epsilon=self.epsilon,
            fit_intercept=self.fit_intercept,
            positive_weight=(class_weight[1],) if binary else tuple(class_weight),
            negative_weight=(class_weight[0],) if binary else (1.0,) * n_classes,
            average=int(self.average),
        )
        return self._train(
            kernel,
            X,
            y_index,
            sample_weight,
            max_iter=max_iter,
            stratify=True,
            score=accuracy_score,
            partial=partial,
            coef_init=coef_init,
            intercept_init=intercept_init,
        )

    def _encode(self, y):
        return np.searchsorted(self.classes_, y)

    @staticmethod
    def _decide(scores):
        """Class indices of raw scores (the encoded labels the validation compares)."""
        return (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)

    def decision_function(self, X):
        """Confidence scores: signed distances to the hyperplanes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or ShardedDataset
            Input data; over a dataset, computed by workers shard by shard.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            Scores of the positive class (binary), or of each class.
        """
        if not isinstance(X, ShardedDataset):
            return super().decision_function(X)
        scores = self._fitted_scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model on serverless workers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), ShardedDataset \
or dask collection
            Training data; CSR, CSC and COO with 32- or 64-bit indices are accepted. A
            :class:`~sklearn_cirrus.ShardedDataset` (or a view of one) is read by the
            workers and brings its own targets and weights; a dask array or dataframe
            is first written as one, block by block by the Dask workers, under
            ``data_url`` (else this machine's shared memory), and removed afterwards.
        y : array-like of shape (n_samples,), dask array or None
            Target labels; None with a dataset.
        coef_init : ndarray of shape (n_classes, n_features), default=None
            Initial weights.
        intercept_init : ndarray of shape (n_classes,), default=None
            Initial intercepts.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, multiplied with ``class_weight``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if is_dask_collection(X):
            with dataset_of_dask(X, y, sample_weight, self.data_url) as dataset:
                return self.fit(dataset, coef_init=coef_init, intercept_init=intercept_init)
        self._check_parameter_combination()
        warm = self.warm_start and hasattr(self, "coef_")
        if warm and coef_init is None:
            coef_init, intercept_init = self._last_iterate()
        if isinstance(X, ShardedDataset):
            self._check_dataset(X, y, sample_weight, reset=True)
            y = X.target_summary()
            if y.labels is None:
                raise ValueError(
                    f"the dataset's targets take more than {MAX_LABELS} values; they are "
                    "not class labels"
                )
            check_classification_targets(y.labels)
            self.classes_ = y.labels
        else:
            X, y = self._validate(X, y, reset=True)
            self.classes_ = np.unique(y)
        return self._fit_classes(
            X,
            y,
            sample_weight,
            max_iter=self.max_iter,
            partial=False,
            coef_init=coef_init,
            intercept_init=intercept_init,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None, sample_weight=None):
        """Run one epoch over ``(X, y)`` on the workers, continuing from the last call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of the training data.
        y : array-like of shape (n_samples,)
            Its labels, all among ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class there will be; required on the first call only.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first_call = not hasattr(self, "classes_")
        if first_call:
            self._check_parameter_combination(for_partial_fit=True)
            if self.class_weight == "balanced":
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit; compute the "
                    "weights with compute_class_weight('balanced', classes=classes, y=y) on "
                    "a large enough sample and pass them as the class_weight dict."
                )
        if isinstance(X, ShardedDataset):
            self._check_dataset(X, y, sample_weight, reset=first_call)
            y = X.target_summary()
        else:
            X, y = self._validate(X, y, reset=first_call)
        _check_partial_fit_first_call(self, classes)
        return self._fit_classes(X, y, sample_weight, max_iter=1, partial=True)

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Probability estimates, for ``loss='log_loss'`` or ``'modified_huber'``.

        Multiclass probabilities normalise the one-vs-rest estimates, as
        scikit-learn's ``SGDClassifier`` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``.
        """
        check_is_fitted(self)
        if self.loss == "log_loss":
            return self._predict_proba_lr(X)
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            positive = (np.clip(scores, -1, 1) + 1) / 2
            return np.column_stack([1 - positive, positive])
        probabilities = (np.clip(scores, -1, 1) + 1) / 2
        totals = probabilities.sum(axis=1)
        all_zero = totals == 0
        # no class claims the sample: spread it uniformly, as scikit-learn does
        probabilities[all_zero] = 1.0
        totals[all_zero] = len(self.classes_)
        return probabilities / totals[:, None]

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Log-probability of each class, in the order of ``classes_``.
        """
        return np.log(self.predict_proba(X))


class ServerlessSGDRegressor(DatasetScoreMixin, RegressorMixin, _BaseServerlessSGD):
    __doc__ = f"""Linear regressor trained by asynchronous SGD on serverless workers.

    The scikit-learn counterpart is :class:`sklearn.linear_model.SGDRegressor`; the
    engine is the one of :class:`ServerlessSGDClassifier`.

    Parameters
    ----------
    loss : {{'squared_error', 'huber', 'epsilon_insensitive', \
'squared_epsilon_insensitive'}}, default='squared_error'
        The loss.
    {_COMMON_PARAMETERS_DOC.strip()}

    With the default ``optimizer='adagrad'``, step sizes are multiplied by the root
    mean square of the target (of the first call, for ``partial_fit``): AdaGrad
    moves a weight by about ``eta0`` a step whatever the gradient's size, and a
    regressor's weights are in the target's units. The scale changes how fast the
    model gets there, not the objective it minimises.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Weights of the features.
    intercept_ : ndarray of shape (1,)
        The intercept.
    {_COMMON_ATTRIBUTES_DOC.strip()}

    See Also
    --------
    sklearn.linear_model.SGDRegressor : The in-process, single-threaded original.
    ServerlessSGDClassifier : The same engine for classification.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_cirrus import ServerlessSGDRegressor
    >>> X, y = make_regression(n_samples=2000, n_features=10, noise=1.0, random_state=0)
    >>> reg = ServerlessSGDRegressor(random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    """

    _parameter_constraints: dict = {
        **_BaseServerlessSGD._parameter_constraints,
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
    }

    def __init__(
        self,
        loss="squared_error",
        *,
        penalty="l2",
        alpha=0.0001,
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-3,
        shuffle=True,
        verbose=0,
        epsilon=0.1,
        random_state=None,
        learning_rate="constant",
        eta0=0.1,
        power_t=0.5,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        average=False,
        n_workers=2,
        executor=None,
        store=None,
        data_url=None,
        batch_size=256,
        optimizer="adagrad",
        exchange_every=None,
        significance=None,
        worker_memory_mb=1024,
        worker_timeout=300.0,
        resources="fastest",
        scale_in=False,
    ):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.n_workers = n_workers
        self.executor = executor
        self.store = store
        self.data_url = data_url
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.exchange_every = exchange_every
        self.significance = significance
        self.worker_memory_mb = worker_memory_mb
        self.worker_timeout = worker_timeout
        self.resources = resources
        self.scale_in = scale_in

    def _kernel(self, n_features: int) -> LinearKernel:
        return LinearKernel(
            loss=self.loss,
            n_features=n_features,
            classification=False,
            penalty=self.penalty,
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            epsilon=self.epsilon,
            fit_intercept=self.fit_intercept,
            average=int(self.average),
        )

    def _shape_coef(self, coef, intercept):
        return coef.ravel(), intercept

    @staticmethod
    def _encode(y):
        return y.astype(np.float64)

    @staticmethod
    def _decide(scores):
        return scores[:, 0]

    def _step_scale(self, mean_square, resume: bool) -> float:
        """AdaGrad's steps in the target's units: its root mean square, fixed by the
        first call of a fit (or of a run of partial_fit). AdaGrad moves a weight by about
        ``eta`` a step whatever the gradient's size, so with unit steps a target in the
        hundreds would take thousands of steps to reach; the plain and momentum
        methods' steps already scale with the gradient."""
        if not resume or not hasattr(self, "_target_scale"):
            rms = float(np.sqrt(mean_square()))
            self._target_scale = rms if np.isfinite(rms) and rms > 0 else 1.0
        return self._target_scale if self.optimizer == "adagrad" else 1.0

    def _fit_values(
        self, X, y, sample_weight, *, max_iter, partial, reset, coef_init=None, intercept_init=None
    ):
        if isinstance(X, ShardedDataset):
            self._check_dataset(X, y, sample_weight, reset=reset)
            y = X.target_summary()  # the targets, summed up
            if y.mean_square is None:
                raise ValueError("the dataset's targets are not numbers")
        else:
            X, y = self._validate_arrays(X, y, reset, y_numeric=True)
            y = y.astype(np.float64)
            sample_weight = _check_sample_weight(sample_weight, X)
        return self._train(
            self._kernel(self.n_features_in_),
            X,
            y,
            sample_weight,
            max_iter=max_iter,
            stratify=False,
            score=r2_score,
            partial=partial,
            coef_init=coef_init,
            intercept_init=intercept_init,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model on serverless workers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), ShardedDataset \
or dask collection
            Training data, as for :meth:`ServerlessSGDClassifier.fit`.
        y : array-like of shape (n_samples,), dask array or None
            Target values; None with a dataset.
        coef_init : ndarray of shape (n_features,), default=None
            Initial weights.
        intercept_init : ndarray of shape (1,), default=None
            Initial intercept.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if is_dask_collection(X):
            with dataset_of_dask(X, y, sample_weight, self.data_url) as dataset:
                return self.fit(dataset, coef_init=coef_init, intercept_init=intercept_init)
        self._check_parameter_combination()
        if self.warm_start and hasattr(self, "coef_") and coef_init is None:
            coef_init, intercept_init = self._last_iterate()
        return self._fit_values(
            X,
            y,
            sample_weight,
            max_iter=self.max_iter,
            partial=False,
            reset=True,
            coef_init=coef_init,
            intercept_init=intercept_init,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch over ``(X, y)`` on the workers, continuing from the last call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of the training data.
        y : array-like of shape (n_samples,)
            Its target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first_call = not hasattr(self, "coef_")
        if first_call:
            self._check_parameter_combination(for_partial_fit=True)
        return self._fit_values(X, y, sample_weight, max_iter=1, partial=True, reset=first_call)

    def predict(self, X):
        """Predict target values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted values.
        """
        if isinstance(X, ShardedDataset):
            return self._fitted_scores(X)[:, 0]
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.asarray(X @ self.coef_).ravel() + self.intercept_[0]
