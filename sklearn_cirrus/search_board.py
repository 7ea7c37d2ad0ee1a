"""The board a search keeps of its running fits: curves, costs, and who stops where.

A :class:`SearchBoard` is a scikit-learn fit callback set on the search and passed
down to every fit (through a ``Pipeline`` too). At every epoch checkpoint of every
candidate x fold fit it records the training loss, the time and the cost so far, and,
when early stopping is on, the search's own score of the model on the fold's held-out
part. It then answers the fit: go on, or stop here. A candidate is stopped as a whole
(all its folds) when one of its fits falls behind, or when someone calls
:meth:`stop_candidate`.

Rules, at epoch ``e`` on fold ``k``, comparing with the other candidates' fits on the
same fold at the same epoch (fits that finished on their own before ``e`` count with
their last score; stopped ones do not):

- ``"median"``: from epoch ``GRACE_EPOCHS`` on, stop when the score is below the median
  of the others' (the median stopping rule of Google Vizier).
- ``"halving"``: at the rungs, epochs 2, 6, 18, 54... (``GRACE_EPOCHS`` times the powers
  of ``HALVING_FACTOR``), stop unless the score is in the best third of all that reached
  that epoch (asynchronous successive halving, with scikit-learn's
  ``HalvingGridSearchCV``'s default factor). Only the rungs are scored, unless a
  dashboard's page draws every epoch.

Neither judges with fewer than ``MIN_PEERS`` other fits to compare with.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.pipeline import Pipeline

from ._compat import _safe_indexing
from .epoch_callbacks import EPOCH_TASK, FIT_TASK

EVALUATION_TASK = "candidate-split-evaluation"
EARLY_STOPPING_RULES = ("median", "halving")
MIN_PEERS = 3
# the first epoch ranks candidates poorly (measured: judging from it lost 0.001 of a9a's
# best score with the median rule, up to 0.012 of MovieLens's RMSE with halving): the rules
# judge from the second
GRACE_EPOCHS = 2
# halving's rungs are GRACE_EPOCHS times the powers of this, and the best 1 /
# HALVING_FACTOR of the fits at a rung go on. Measured on bench_search.py's grids, 3 runs
# each, scored at the rungs only: a9a 0.73 s and MovieLens 4.02 s at the best score of the
# search without a rule every time, where halves at epochs 2, 4, 8... took 0.82 s and 4.45
# s (scored at every epoch, 1.15 s on a9a), and thirds from epoch 1 lost MovieLens's best
HALVING_FACTOR = 3


def is_rung(epoch: int) -> bool:
    """Whether halving judges at ``epoch``: ``GRACE_EPOCHS`` times a power of
    ``HALVING_FACTOR``."""
    if epoch < GRACE_EPOCHS or epoch % GRACE_EPOCHS:
        return False
    epoch //= GRACE_EPOCHS
    while epoch % HALVING_FACTOR == 0:
        epoch //= HALVING_FACTOR
    return epoch == 1


@dataclass
class FitRecord:
    """One candidate x fold fit, epoch by epoch."""

    epoch: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    worker_seconds: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    relaunches: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    finished: bool = False
    report: dict | None = None
    n_iter: int | None = None

    def as_arrays(self) -> dict[str, np.ndarray]:
        names = ("epoch", "seconds", "loss", "score", "worker_seconds", "cost_usd")
        return {name: np.asarray(getattr(self, name)) for name in names}


def _evaluation_of(context):
    """The candidate x fold task a (sub)task belongs to, or None (the refit, say)."""
    while context is not None:
        if EVALUATION_TASK in (context.task_name, context.source_task_name):
            return context
        context = context.parent
    return None


class SearchBoard:
    """Watch every fit of a search; stop candidates by rule or by hand.

    Parameters
    ----------
    early_stopping : {'median', 'halving'} or None
        The rule; None only watches.
    scorer : callable
        ``scorer(estimator, X, y)``, greater is better: the search's refit scorer.
    X, y : the search's data, and ``splits``, its list of (train, test) index pairs.
    progress : tqdm-like or None
        Advanced by one at every fit's end.
    score_epochs : callable
        ``score_epochs()`` True: score checkpoints even without a rule (while a
        dashboard's page is open: its score curves).
    limits : dict or None
        The search's ``{'deadline': seconds, 'budget': dollars}``: every candidate
        stops once one more epoch of every running fit would pass either.
    """

    # a scikit-learn auto-propagated callback: passed down to nested estimators
    max_propagation_depth = None

    def __init__(
        self,
        *,
        early_stopping,
        scorer,
        X,
        y,
        splits,
        progress=None,
        score_epochs=lambda: False,
        limits=None,
    ):
        self.early_stopping = early_stopping
        self.limits = limits or {}
        self.score_epochs = score_epochs
        self._scorer = scorer
        self._X, self._y, self._splits = X, y, splits
        self._progress = progress
        self._lock = threading.Lock()
        self._records: dict[tuple[int, int], FitRecord] = {}
        self._models: dict[int, object] = {}  # evaluation index -> the estimator it fits
        self._held_out: dict[int, tuple] = {}
        self._stopped: dict[int, str] = {}  # candidate -> why
        self._started = time.perf_counter()
        self.candidates: list[dict] = []  # the parameters of each, once the search has them

    @property
    def n_splits(self) -> int:
        return len(self._splits)

    def record(self, candidate: int, fold: int) -> FitRecord:
        with self._lock:
            return self._records.setdefault((candidate, fold), FitRecord())

    def stopped(self) -> dict[int, str]:
        """Candidates stopped so far, with the reason ('median', 'halving', 'by hand')."""
        with self._lock:
            return dict(self._stopped)

    def curves(self) -> tuple[list[dict], list[list[dict]], np.ndarray]:
        """What the board holds now: candidates, their curves per fold, who was stopped."""
        with self._lock:
            n_candidates = len(self.candidates)
            curves = [
                [self._records.get((i, k), FitRecord()).as_arrays() for k in range(self.n_splits)]
                for i in range(n_candidates)
            ]
            stopped = np.array([i in self._stopped for i in range(n_candidates)], dtype=bool)
            return list(self.candidates), curves, stopped

    @property
    def started(self) -> float:
        """When the search started (``time.perf_counter``)."""
        return self._started

    def totals(self) -> dict[str, float]:
        """Samples trained, invocations failed and relaunched so far, over every fit."""
        with self._lock:
            records = list(self._records.values())
        return {
            name: sum(getattr(r, name)[-1] for r in records if getattr(r, name))
            for name in ("samples", "failures", "relaunches")
        }

    def finished(self, candidate: int) -> bool:
        """Whether every fit of ``candidate`` has ended."""
        with self._lock:
            records = [self._records.get((candidate, k)) for k in range(self.n_splits)]
        return all(record is not None and record.finished for record in records)

    def stop_candidate(self, candidate: int, reason: str = "by hand") -> None:
        """Stop every fit of ``candidate`` at its next epoch checkpoint."""
        with self._lock:
            self._stopped.setdefault(candidate, reason)

    # scikit-learn callback hooks

    def setup(self, estimator, context):
        self._started = time.perf_counter()

    def teardown(self, estimator, context):
        if self._progress is not None:
            self._progress.close()

    def on_fit_task_begin(self, estimator, context, **_):
        # the outermost estimator of a candidate x fold fit: the pipeline or the model
        if context.source_task_name == EVALUATION_TASK:
            with self._lock:
                self._models[context.task_id] = estimator

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        evaluation = _evaluation_of(context)
        if evaluation is None:
            return False
        candidate, fold = divmod(evaluation.task_id, self.n_splits)
        if context.task_name == EPOCH_TASK:
            if fitted_estimator is None:  # the epoch begun after the last checkpoint
                return False
            return self._checkpoint(candidate, fold, evaluation.task_id, fitted_estimator)
        if context.task_name == FIT_TASK:
            self._finish(candidate, fold, evaluation.task_id, fitted_estimator)
        return False

    # what the hooks do

    def _finish(self, candidate: int, fold: int, index: int, fitted) -> None:
        record = self.record(candidate, fold)
        with self._lock:
            self._models.pop(index, None)  # no more checkpoints: let scikit-learn free it
            record.finished = True
            if hasattr(fitted, "fit_report_"):  # not when the fit failed
                record.report = dict(fitted.fit_report_)
                record.n_iter = fitted.n_iter_
        if self._progress is not None:
            self._progress.update(1)

    def _checkpoint(self, candidate: int, fold: int, index: int, fitted) -> bool:
        report = fitted.fit_report_
        scored = self._scores_epoch(fitted.n_iter_)
        score = self._score(index, fold, fitted) if scored else np.nan
        record = self.record(candidate, fold)
        with self._lock:
            record.epoch.append(fitted.n_iter_)
            record.seconds.append(time.perf_counter() - self._started)
            record.loss.append(fitted.loss_curve_[-1])
            record.score.append(score)
            record.worker_seconds.append(report["worker_seconds"])
            record.cost_usd.append(report["estimated_cost_usd"])
            record.samples.append(report["samples"])
            record.failures.append(report["failures"])
            record.relaunches.append(report["relaunches"])
            record.in_flight.append(report["in_flight"])
            last_epoch = fitted.n_iter_ >= getattr(fitted, "max_iter", np.inf)
            if (
                candidate not in self._stopped
                and not last_epoch  # nothing left to save
                and self._falls_behind(candidate, fold, fitted.n_iter_, score)
            ):
                self._stopped[candidate] = self.early_stopping
            limit = self._limit_reached()
            if limit is not None:
                for other in range(max(len(self.candidates), candidate + 1)):
                    self._stopped.setdefault(other, limit)
            return candidate in self._stopped

    def _limit_reached(self) -> str | None:
        """'deadline' or 'budget' once one more epoch of every fit still running (as long
        and as costly as its last) would pass it. Under the lock."""
        if not self.limits:
            return None
        running = [r for r in self._records.values() if not r.finished and r.seconds]
        records = list(self._records.values())

        def last_step(values):
            return values[-1] - (values[-2] if len(values) > 1 else 0.0)

        now = time.perf_counter() - self._started
        longest = max((last_step(r.seconds) for r in running), default=0.0)
        spent = sum(r.cost_usd[-1] for r in records if r.cost_usd)
        coming = sum(last_step(r.cost_usd) for r in running)
        if "deadline" in self.limits and now + longest > self.limits["deadline"]:
            return "deadline"
        if "budget" in self.limits and spent + coming > self.limits["budget"]:
            return "budget"
        return None

    def _scores_epoch(self, epoch: int) -> bool:
        """Whether the checkpoint at ``epoch`` is scored: the median rule needs every
        epoch, halving its rungs; a dashboard's open page draws every epoch."""
        if self.score_epochs():
            return True
        if self.early_stopping == "halving":
            return is_rung(epoch)
        return self.early_stopping is not None

    def _held_out_part(self, fold: int) -> tuple:
        """The fold's held-out rows, taken once."""
        with self._lock:
            if fold not in self._held_out:
                test = self._splits[fold][1]
                self._held_out[fold] = (
                    _safe_indexing(self._X, test),
                    _safe_indexing(self._y, test),
                )
            return self._held_out[fold]

    def _score(self, index: int, fold: int, fitted) -> float:
        """The search's score of the model as it stands, on the fold's held-out part."""
        with self._lock:
            model = self._models.get(index)
        X_test, y_test = self._held_out_part(fold)
        if model is None or type(model) is type(fitted):
            model = fitted
        elif isinstance(model, Pipeline):
            # the pipeline's transformers are fitted: only its final model is mid-fit
            name = model.steps[-1][0]
            model = copy.copy(model)
            model.steps = [*model.steps[:-1], (name, fitted)]
        else:
            return np.nan  # another meta-estimator: nothing to score at checkpoints
        try:
            return self._scorer(model, X_test, y_test)
        except Exception:  # the fit goes on; scikit-learn scores it at the end, error_score and all
            return np.nan

    def _peer_scores(self, candidate: int, fold: int, epoch: int) -> list[float]:
        scores = []
        for (other, other_fold), record in self._records.items():
            if other == candidate or other_fold != fold or other in self._stopped:
                continue
            if epoch in record.epoch:
                scores.append(record.score[record.epoch.index(epoch)])
            elif record.finished and record.epoch and record.epoch[-1] < epoch:
                scores.append(record.score[-1])
        return [s for s in scores if np.isfinite(s)]

    def _falls_behind(self, candidate: int, fold: int, epoch: int, score: float) -> bool:
        if self.early_stopping is None or not np.isfinite(score):
            return False
        if (self.early_stopping == "median" and epoch < GRACE_EPOCHS) or (
            self.early_stopping == "halving" and not is_rung(epoch)
        ):
            return False
        peers = self._peer_scores(candidate, fold, epoch)
        if len(peers) < MIN_PEERS:
            return False
        if self.early_stopping == "median":
            return score < np.median(peers)
        # halving: the best third of those at the rung go on
        rank, n_at_rung = sum(peer > score for peer in peers), len(peers) + 1
        return rank >= -(-n_at_rung // HALVING_FACTOR)


class FitBoard(SearchBoard):
    """The board of one fit, for its dashboard: its epochs as candidate 0's only fold,
    scored by the estimator's ``score`` on ``validation`` (X, y) when given, stopped by
    hand only. Fed by a callback that owns it (``dashboard.FitDashboard``)."""

    def __init__(self, estimator, validation=None):
        super().__init__(
            early_stopping=None,
            scorer=lambda model, X, y: model.score(X, y),
            X=None,
            y=None,
            splits=[(None, None)],
        )
        self.candidates = [{"model": " ".join(repr(estimator).split())}]
        self._models[0] = estimator  # the outermost: a pipeline is scored whole
        self._validation = validation

    def _scores_epoch(self, epoch: int) -> bool:
        return self._validation is not None

    def _held_out_part(self, fold: int) -> tuple:
        return self._validation

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, **_):
        if context.task_name == EPOCH_TASK and fitted_estimator is not None:
            return self._checkpoint(0, 0, 0, fitted_estimator)
        if context.task_name == FIT_TASK:
            self._finish(0, 0, 0, fitted_estimator)
        return False


def candidate_curve(folds: list[dict]) -> dict | None:
    """A candidate's curve from its folds' records, epoch by epoch: the mean held-out
    score and training loss of the folds that reached the epoch, the time the last of
    them finished it (never before the epoch before), and the cost of all its folds so
    far (a fold that ended earlier at its final cost); None before its first epoch. What
    ``plot_loss_curves`` and the dashboard draw."""
    lengths = np.array([len(curve["epoch"]) for curve in folds])
    length = lengths.max(initial=0)
    if length == 0:
        return None
    # folds x epochs, a fold's cells past its last epoch marked as not reached
    reached = np.arange(length) < lengths[:, None]

    def table(name: str, pad: float | None = None) -> np.ndarray:
        """Folds x epochs of ``name``; past a fold's last epoch, ``pad`` (None: the
        fold's last value)."""
        out = np.zeros((len(folds), length))
        for row, curve in zip(out, folds, strict=True):
            values = np.asarray(curve[name], dtype=float)
            row[: len(values)] = values
            if len(values):
                row[len(values) :] = values[-1] if pad is None else pad
        return out

    combined = {
        # the mean over the folds that reached the epoch (a NaN score stays NaN)
        name: np.where(reached, table(name), 0.0).sum(axis=0) / reached.sum(axis=0)
        for name in ("score", "loss")
    }
    # an epoch is done when all the folds that reach it are: never before the one before
    combined["seconds"] = np.maximum.accumulate(table("seconds", pad=-np.inf).max(axis=0))
    # a fold that ended earlier costs what it cost in all
    combined["cost_usd"] = table("cost_usd").sum(axis=0)
    return combined
