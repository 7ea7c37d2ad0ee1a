"""A live page for a running search or a long fit: curves, the candidates, and buttons to
stop them.

``ServerlessGridSearchCV(..., dashboard=True)`` serves it while the search runs, as
Cirrus's tuning stage did; ``estimator.set_callbacks(FitDashboard())`` serves one for a
single fit (and keeps it up after the fit, until ``close()``). It is a Bokeh server
application, the library Dask's own dashboard is built on: Bokeh keeps each open page in
sync with a document on the server over a websocket, so the page updates itself without
reloading and its buttons call Python there (the only JavaScript of ours is one line
that makes the table redraw). The server runs in a process of its own
(``sklearn_cirrus.page_server``, on Tornado), bound to loopback by default; bound anywhere
else it requires the token its URL carries. This module is the driver's side: what the
page shows, read from the search's board, sent to that process while a page is open, and
the stops its buttons ask for carried out. Imported only when asked for:
``pip install "sklearn-cirrus[dashboard]"``.

Each page shows, refreshed every ``REFRESH_MS``: per candidate the held-out score and the
training loss against seconds and against estimated dollars (the numbers of
``plot_loss_curves``), samples per second, invocations in flight and failed invocations
and relaunched ones (after a failure, or on the rest of a shard a worker ran out of time
on), and a table of the candidates (parameters, epoch, score, cost, state) sortable by
any column. "Stop selected" and "Stop all" go through the search's ``stop_candidate``, as
a call from Python does.
"""

from __future__ import annotations

import multiprocessing
import secrets
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import wait

import numpy as np

from .search_board import FitBoard, SearchBoard, candidate_curve

REFRESH_MS = 500
# points a curve is drawn with at most: a long fit's thousands of epochs would cost the
# browser more at every refresh and show nothing more at this size
MAX_POINTS = 400
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def snapshot(board: SearchBoard, in_flight: Callable[[], int] = lambda: 0) -> dict:
    """What the page shows, read from the board now: ``curves`` (candidate -> the
    combined curve of ``plot_loss_curves``), ``table`` (columns of the candidates' table)
    and ``stats``."""
    candidates, curves, stopped = board.curves()
    reasons = board.stopped()
    combined = {i: curve for i, folds in enumerate(curves) if (curve := candidate_curve(folds))}
    table = {"candidate": [], "params": [], "epoch": [], "score": [], "cost_usd": [], "state": []}
    for i, params in enumerate(candidates):
        curve = combined.get(i)
        finished = board.finished(i)
        table["candidate"].append(i)
        table["params"].append(", ".join(f"{k.split('__')[-1]}={v}" for k, v in params.items()))
        table["epoch"].append(0 if curve is None else len(curve["loss"]))
        table["score"].append(np.nan if curve is None else float(curve["score"][-1]))
        table["cost_usd"].append(0.0 if curve is None else float(curve["cost_usd"][-1]))
        state = f"stopped ({reasons[i]})" if stopped[i] else "running"
        table["state"].append("finished" if finished and not stopped[i] else state)
    totals = board.totals()
    elapsed = max(time.perf_counter() - board.started, 1e-9)
    stats = {
        "samples_per_second": totals["samples"] / elapsed,
        "in_flight": in_flight(),
        "failures": totals["failures"],
        "relaunches": totals["relaunches"],
    }
    return {"curves": combined, "table": table, "stats": stats}


def curve_columns(now: dict) -> dict:
    """The page's curve columns from a :func:`snapshot`: a line per candidate, at most
    ``MAX_POINTS`` points each, seconds from the first epoch of all."""
    columns = {name: [] for name in ("candidate", "label", "seconds", "cost_usd", "score", "loss")}
    start = min((curve["seconds"][0] for curve in now["curves"].values()), default=0.0)
    for i, curve in now["curves"].items():
        columns["candidate"].append(i)
        columns["label"].append(now["table"]["params"][i])
        drawn = _spread(len(curve["loss"]), MAX_POINTS)
        for name in ("cost_usd", "score", "loss"):
            columns[name].append(curve[name][drawn])
        columns["seconds"].append(curve["seconds"][drawn] - start)
    return columns


class Dashboard:
    """Serve the page of a running search until ``close()`` (see module doc).

    The page is served by a process of its own (``sklearn_cirrus.page_server``); a
    thread here sends it what the page shows every ``REFRESH_MS`` while a page is open
    (nothing while none is) and carries out the stops its buttons ask for.

    Parameters
    ----------
    owner : object with ``stop_candidate(i)``
        What the buttons stop: the running search, or a :class:`FitDashboard`.
    board : SearchBoard
        Where the fits report; ``dashboard.board`` may be replaced (a new fit).
    in_flight : callable
        The number of invocations in flight now.
    address : str
        Where to listen; anything but loopback requires the token.
    port : int or None
        None: a free port.
    title : str
        The page's title.
    """

    def __init__(self, owner, board, in_flight, *, address="127.0.0.1", port=None, title="search"):
        import bokeh  # noqa: F401 (fail here, in the caller, if it is not installed)

        self.owner, self.board, self.in_flight, self.title = owner, board, in_flight, title
        self.token = None if address in LOOPBACK else secrets.token_urlsafe(16)
        self.address = address
        # the port is checked here, so that one in use fails the caller at once
        self.port = _bindable(address, port or 0)
        self.pages = 0  # pages open now
        self.shown: dict | None = None  # the last state sent to the pages
        self.ready = threading.Event()  # set once the page is served
        self._connection, theirs = multiprocessing.Pipe()
        # the page server starts (Bokeh's import, ~1 s) while the caller goes on
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sklearn_cirrus.page_server", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self._connection.send(
            {"address": address, "port": self.port, "token": self.token, "title": title}
        )
        self._closing = threading.Event()
        self._wake, self._waker = multiprocessing.Pipe(duplex=False)  # close() ends a wait
        self._thread = threading.Thread(target=self._run, name="cirrus-dashboard", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::") else self.address
        query = "" if self.token is None else f"?token={self.token}"
        return f"http://{host}:{self.port}/{query}"

    def _receive(self):
        try:
            return self._connection.recv()
        except EOFError:
            return "failed", f"the page server ended (exit code {self._process.wait()})"

    def _run(self) -> None:
        """Say where the page is once served; then send the pages what changed every
        ``REFRESH_MS`` and carry out their requests."""
        status, why = self._receive()
        if status != "ready":
            warnings.warn(f"the dashboard could not serve on {self.url}: {why}", stacklevel=1)
            return
        self.ready.set()
        print(f"{self.title} dashboard: {self.url}", flush=True)
        due = time.monotonic()
        while not self._closing.is_set():
            ready = wait([self._connection, self._wake], max(due - time.monotonic(), 0))
            if self._connection in ready:
                kind, value = self._receive()
                if kind == "pages":
                    self.pages = value
                    self.shown = None if value == 0 else self.shown
                elif kind == "stop":
                    self.stop_candidates(value)
                elif kind == "failed":
                    return
                continue
            due = time.monotonic() + REFRESH_MS / 1000
            if self.pages:
                self._send()

    def _send(self) -> None:
        now = snapshot(self.board, self.in_flight)
        update = {"stats": now["stats"], "curves": None, "table": None}
        shown = (
            now["table"],
            [(i, len(c["loss"]), c["loss"][-1]) for i, c in now["curves"].items()],
        )
        if not _same(shown, self.shown):
            self.shown = shown
            update.update(curves=curve_columns(now), table=now["table"])
        try:
            self._connection.send(update)
        except OSError:  # the page server is gone: nothing more to show
            self._closing.set()

    def close(self) -> None:
        """Stop serving; open pages stop updating."""
        self._closing.set()
        self._waker.send(None)
        self._thread.join(timeout=10)
        for connection in (self._connection, self._wake, self._waker):
            connection.close()
        # the page server keeps nothing: ended at once, not after its own shutdown
        self._process.terminate()
        self._process.wait()

    def stop_candidates(self, candidates) -> None:
        """What the page's buttons do: the owner's own ``stop_candidate``."""
        for candidate in candidates:
            self.owner.stop_candidate(int(candidate))


class FitDashboard:
    """Watch one long fit live in the browser, and stop it: a scikit-learn fit callback.

    ``model.set_callbacks(FitDashboard()).fit(X, y)`` serves the page of
    :class:`Dashboard` for the fit (as candidate 0), on 127.0.0.1 at a free port by
    default; its URL is printed and kept in ``url`` once the fit starts. "Stop all"
    (or :meth:`stop`) ends the fit at its next epoch, with the model as it stands. The
    page stays up after the fit, showing its final state, until :meth:`close` (or the
    end of the Python process); a later fit with the same callback is shown on it.
    Reaches the model inside a ``Pipeline``.

    Parameters
    ----------
    validation : tuple (X, y) or None
        Held-out data the page scores the model on at every epoch (with the fitted
        estimator's ``score``: the whole pipeline's, in a pipeline). None: only the
        training loss is drawn.
    address : str, default="127.0.0.1"
        Where to listen; anything but loopback requires the token of ``url``.
    port : int or None
        None: a free port.
    """

    # a scikit-learn auto-propagated callback: reaches the model inside a pipeline
    max_propagation_depth = None

    def __init__(self, validation=None, *, address="127.0.0.1", port=None):
        self.validation = validation
        self.address = address
        self.port = port
        self.url = None
        self.board: FitBoard | None = None
        self._dashboard: Dashboard | None = None

    def setup(self, estimator, context):
        self.board = FitBoard(estimator, self.validation)
        if self._dashboard is None:
            self._dashboard = Dashboard(
                self,
                self.board,
                self._in_flight,
                address=self.address,
                port=self.port,
                title="fit",
            )
            self.url = self._dashboard.url
        self._dashboard.board = self.board

    def teardown(self, estimator, context):
        pass  # the page stays up, showing the fit as it ended

    def on_fit_task_begin(self, estimator, context, **_):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        # (scikit-learn builds the fitted estimator for hooks that name it)
        return self.board.on_fit_task_end(estimator, context, fitted_estimator=fitted_estimator)

    def _in_flight(self) -> int:
        record = self.board.record(0, 0)
        return record.in_flight[-1] if record.in_flight and not record.finished else 0

    def stop_candidate(self, candidate: int) -> None:
        """What the page's buttons call: the fit is candidate 0."""
        self.stop()

    def stop(self) -> None:
        """End the running fit at its next epoch checkpoint."""
        if self.board is not None:
            self.board.stop_candidate(0)

    def close(self) -> None:
        """Stop serving the page."""
        if self._dashboard is not None:
            self._dashboard.close()
            self._dashboard = None


def _spread(n: int, at_most: int) -> np.ndarray:
    """Indices of at most ``at_most`` of ``n`` points, evenly spread, the last included."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(int))


def _same(shown, before) -> bool:
    """Whether two of the page's states are equal (NaN scores equal too)."""
    try:
        np.testing.assert_equal(shown, before)
    except AssertionError:
        return False
    return True


def _bindable(address: str, port: int) -> int:
    """``port`` if a server can listen on it at ``address`` (0: a free one), else the
    OSError that says why."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado's own
        probe.bind(("127.0.0.1" if address == "localhost" else address, port))
        return probe.getsockname()[1]
