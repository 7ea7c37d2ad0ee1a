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
- ``"halving"``: successive halving as scikit-learn's ``HalvingGridSearchCV`` does it,
  with epochs for its resource and its default factor. At the rungs, epochs 2, 6, 18,
  54... (``GRACE_EPOCHS`` times the powers of ``HALVING_FACTOR``), a fit waits, giving
  its pool slot to the others, until every running fit of the search has reached the
  rung; then the candidates are ranked by their mean score over the folds there and
  the best third go on. A fit that begins after its rung was judged goes on if it
  scores at least the last candidate kept. Only the rungs are scored, unless a
  dashboard's page draws every epoch.

The median rule does not judge with fewer than ``MIN_PEERS`` other fits to compare
with; halving judges a rung that two candidates or more reached.
"""

from __future__ import annotations

import contextlib
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
# HALVING_FACTOR of the candidates at a rung go on. Measured on bench_search.py's grids,
# 3 runs each: thirds at 2, 6, 18 keep the best score of the search without a rule every
# time, where halves at epochs 2, 4, 8... took 12% longer and thirds from epoch 1 lost
# MovieLens's best. Judged fold by fold as fits came (asynchronously), thirds ran 140-173
# of a9a's fit-epochs; waiting at the rungs for every fit and ranking candidates by their
# mean over folds runs 132, the same each run
HALVING_FACTOR = 3
# the fits of a search begin within milliseconds of each other (a fit per thread); one
# not begun this long after the last is taken to have failed before it could
UNBEGUN_WAIT_S = 2.0


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
    lend_slot : callable
        ``lend_slot()``: a context in which a fit waiting at a rung gives the slot of
        the search's pool it holds, if any, to the others (``ThrottledExecutor.lend_slot``).
    concurrent_fits : int or None
        How many candidate x fold fits the search runs at once (None: all): a rung
        waits for a fit yet to begin only while one more can.
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
        lend_slot=contextlib.nullcontext,
        concurrent_fits=None,
    ):
        self.early_stopping = early_stopping
        self.limits = limits or {}
        self.score_epochs = score_epochs
        self._scorer = scorer
        self._X, self._y, self._splits = X, y, splits
        self._progress = progress
        # notified at every change a fit waiting at a rung may be waiting for
        self._lock = threading.Condition(threading.Lock())
        self._lend_slot = lend_slot
        self._rungs: dict[int, float] = {}  # judged rung -> the last kept candidate's score
        self._records: dict[tuple[int, int], FitRecord] = {}
        self._models: dict[int, object] = {}  # evaluation index -> the estimator it fits
        self._begun: set[int] = set()  # the evaluation indexes of the fits begun
        self._last_begin = time.perf_counter()
        self._concurrent_fits = concurrent_fits
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
            return self._finished(candidate)

    def _finished(self, candidate: int) -> bool:
        """``finished``, under the lock."""
        records = [self._records.get((candidate, k)) for k in range(self.n_splits)]
        return all(record is not None and record.finished for record in records)

    def stop_candidate(self, candidate: int, reason: str = "by hand") -> None:
        """Stop every fit of ``candidate`` at its next epoch checkpoint."""
        with self._lock:
            self._stopped.setdefault(candidate, reason)
            self._lock.notify_all()

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
                self._begun.add(context.task_id)
                self._last_begin = time.perf_counter()
                self._lock.notify_all()

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
            self._lock.notify_all()
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
            epoch = fitted.n_iter_
            if is_rung(epoch):  # what a fit waiting at this rung waits for
                self._lock.notify_all()
            goes_on = candidate not in self._stopped and not (
                epoch >= getattr(fitted, "max_iter", np.inf)  # nothing left to save
            )
            if goes_on and self._falls_behind(candidate, fold, epoch, score):
                self._stopped[candidate] = self.early_stopping
            judged_here = goes_on and self.early_stopping == "halving" and is_rung(epoch)
        if judged_here:
            self._judge_rung(candidate, epoch)
        with self._lock:
            limit = self._limit_reached()
            if limit is not None:
                for other in range(max(len(self.candidates), candidate + 1)):
                    self._stopped.setdefault(other, limit)
                self._lock.notify_all()
            return candidate in self._stopped

    # halving's rungs

    def _judge_rung(self, candidate: int, epoch: int) -> None:
        """Wait until no running fit is short of ``epoch``, then stop the candidates out
        of the best third there (judged once; a candidate that comes later against the
        last one kept)."""
        with self._lock:
            pending = epoch not in self._rungs and self._short_of(epoch)
        if pending:
            with self._lend_slot(), self._lock:
                # (woken by the checkpoints at rungs and the fits' ends; the timeout for
                # fits that may never begin)
                while epoch not in self._rungs and self._short_of(epoch):
                    self._lock.wait(timeout=UNBEGUN_WAIT_S / 4)
        with self._lock:
            means = self._rung_means(epoch)
            if epoch not in self._rungs:
                # the best, the first in the grid of equals first (as scikit-learn ranks)
                ranked = sorted(
                    (c for c, m in means.items() if np.isfinite(m)), key=lambda c: (-means[c], c)
                )
                if len(ranked) < 2:
                    return
                n_kept = -(-len(ranked) // HALVING_FACTOR)
                self._rungs[epoch] = means[ranked[n_kept - 1]]
                behind = ranked[n_kept:]
            else:
                behind = [candidate] if means.get(candidate, np.nan) < self._rungs[epoch] else []
            for loser in behind:
                if not self._finished(loser):
                    self._stopped.setdefault(loser, "halving")
            self._lock.notify_all()

    def _short_of(self, epoch: int) -> bool:
        """Whether a fit of a candidate not stopped has not reached ``epoch`` yet and
        will: it runs, or it is yet to begin and can (a fit that fails before it begins
        says nothing: one not begun within ``UNBEGUN_WAIT_S`` of the last is not waited
        for). Under the lock."""
        n_splits = self.n_splits
        running = 0
        begun = [0] * len(self.candidates)  # each candidate's fits begun
        for index in self._begun:
            candidate, fold = divmod(index, n_splits)
            if candidate < len(begun):  # (an evaluation beyond this board's candidates)
                begun[candidate] += 1
            record = self._records.get((candidate, fold))
            if record is not None and record.finished:
                continue
            running += 1
            # (a record is made just before its first epoch is written in it)
            reached = record is not None and record.epoch and record.epoch[-1] >= epoch
            if candidate not in self._stopped and not reached:
                return True
        can_begin = (
            self._concurrent_fits is None or running < self._concurrent_fits
        ) and time.perf_counter() - self._last_begin < UNBEGUN_WAIT_S
        return can_begin and any(
            count < n_splits and candidate not in self._stopped
            for candidate, count in enumerate(begun)
        )

    def _rung_means(self, epoch: int) -> dict[int, float]:
        """Each candidate not stopped that reached ``epoch``: its mean score over its
        folds there (a fold that ended before: its last score). Under the lock."""
        folds: dict[int, list[float]] = {}
        for (candidate, _), record in self._records.items():
            if candidate in self._stopped or not record.epoch:
                continue
            if epoch in record.epoch:
                score = record.score[record.epoch.index(epoch)]
            elif record.finished and record.epoch[-1] < epoch:
                score = next((s for s in reversed(record.score) if np.isfinite(s)), np.nan)
            else:
                continue
            folds.setdefault(candidate, []).append(score)
        return {candidate: float(np.mean(scores)) for candidate, scores in folds.items()}

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
        """The median rule's verdict (halving judges whole rungs: ``_judge_rung``)."""
        if self.early_stopping != "median" or not np.isfinite(score) or epoch < GRACE_EPOCHS:
            return False
        peers = self._peer_scores(candidate, fold, epoch)
        return len(peers) >= MIN_PEERS and score < np.median(peers)


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
