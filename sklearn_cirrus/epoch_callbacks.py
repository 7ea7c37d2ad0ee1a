"""scikit-learn's fit callbacks (``sklearn.callback``), run at every epoch of a fit.

Our estimators are :class:`~sklearn.callback.CallbackSupportMixin` estimators: a fit
is a task whose subtasks are its epochs. An epoch's task begins when the previous one
ends and ends at the driver's checkpoint, where the callbacks see the model as it
stands (``fitted_estimator``, built only if a callback asks for it) and may stop the
fit. This is how :class:`~sklearn_cirrus.model_selection.ServerlessGridSearchCV`
watches and stops the fits of a search, and how ``sklearn.callback.ProgressBar`` or
``ScoringMonitor`` work on our estimators.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from .runtime.driver import Checkpoint

FIT_TASK = "serverless-fit"  # the root task of one of our fits
EPOCH_TASK = "epoch"


class EpochCallbacks:
    """The driver's ``on_epoch`` hook for one fit: end this epoch's task, begin the next.

    ``attributes(checkpoint)`` gives the fitted attributes of the model at a
    checkpoint, from which the callbacks' ``fitted_estimator`` is made.
    """

    def __init__(
        self,
        estimator,
        context,
        attributes: Callable[[Checkpoint], dict],
        *,
        X=None,
        y=None,
        metadata=None,
    ):
        self._estimator = estimator
        self._context = context
        self._attributes = attributes
        self._data = {"X": X, "y": y, "metadata": metadata}
        self._epoch = self._begin()

    def _begin(self):
        epoch = self._context.subcontext(task_name=EPOCH_TASK)
        epoch.call_on_fit_task_begin(estimator=self._estimator, **self._data)
        return epoch

    def __call__(self, checkpoint: Checkpoint) -> bool:
        stop = self._epoch.call_on_fit_task_end(
            estimator=self._estimator,
            reconstruction_attributes=lambda: self._attributes(checkpoint),
            **self._data,
        )
        self._epoch = self._begin()
        return stop

    def close(self) -> None:
        """End the task of the epoch that never ran (begun after the last checkpoint)."""
        self._epoch.call_on_fit_task_end(estimator=self._estimator)


class EpochCallback:
    """A fit callback that sees the model at the end of every epoch: override ``on_epoch``.

    ``on_epoch(fitted_estimator, X)`` gets the model as it stands and the fit's ``X``;
    returning True stops the fit there. Set it with ``estimator.set_callbacks(...)``.
    """

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **_):
        pass

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None):
        if context.task_name != EPOCH_TASK or fitted_estimator is None:
            return False
        return bool(self.on_epoch(fitted_estimator, X))

    def on_epoch(self, fitted_estimator, X) -> bool:
        """Look at the model after an epoch; return True to stop the fit there.

        Parameters
        ----------
        fitted_estimator : estimator
            A copy of the estimator with the fitted attributes of this epoch.
        X : array-like or None
            The training data the fit was given.

        Returns
        -------
        stop : bool
        """
        raise NotImplementedError


def has_callbacks(estimator) -> bool:
    """Whether anything listens: callbacks set on the estimator or passed down to it."""
    return bool(getattr(estimator, "_skl_callbacks", None))


@contextmanager
def fit_task(estimator, *, max_epochs: int | None, attributes, X=None, y=None, sample_weight=None):
    """Open the fit's callback task; yield the ``on_epoch`` hook (None without callbacks).
    ``max_epochs`` None: not known in advance.

    The fit's task ends however the fit ends, so that a watcher sees failed fits end
    too. The estimator's ``fit`` must be wrapped by ``sklearn.callback.with_callbacks``.
    """
    # one more subtask than epochs: the one begun after the last checkpoint
    context = estimator._init_callback_context(
        task_name=FIT_TASK, max_subtasks=None if max_epochs is None else max_epochs + 1
    )
    metadata = None if sample_weight is None else {"sample_weight": sample_weight}
    context.call_on_fit_task_begin(estimator=estimator, X=X, y=y, metadata=metadata)
    hook = None
    if has_callbacks(estimator):
        hook = EpochCallbacks(estimator, context, attributes, X=X, y=y, metadata=metadata)
    try:
        yield hook
    finally:
        if hook is not None:
            hook.close()
        context.call_on_fit_task_end(
            estimator=estimator, X=X, y=y, metadata=metadata, reconstruction_attributes={}
        )
