"""A live page for a running search or a long fit: curves, the candidates, and buttons to
stop them.

``ServerlessGridSearchCV(..., dashboard=True)`` serves it while the search runs, as
Cirrus's tuning stage did; ``estimator.set_callbacks(FitDashboard())`` serves one for a
single fit (and keeps it up after the fit, until ``close()``). It is a Bokeh server
application, the library Dask's own dashboard is built on: Bokeh keeps each open page in
sync with a document in this process over a websocket, so the page updates itself
without reloading and its buttons call Python here (the only JavaScript of ours is one
line that makes the table redraw). The server runs on Tornado in a thread of its own,
bound to loopback by default; bound anywhere else it requires the token its URL carries.
Imported only when asked for: ``pip install "sklearn-cirrus[dashboard]"``.

Each page shows, refreshed every ``REFRESH_MS``: per candidate the held-out score and the
training loss against seconds and against estimated dollars (the numbers of
``plot_loss_curves``), samples per second, invocations in flight and failed invocations
and relaunched ones (after a failure, or on the rest of a shard a worker ran out of time
on), and a table of the candidates (parameters, epoch, score, cost, state) sortable by
any column. "Stop selected" and "Stop all" go through the search's ``stop_candidate``, as
a call from Python does.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from ._extras import require
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
    table = snapshot_columns()
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


class Dashboard:
    """Serve the page of a running search until ``close()`` (see module doc).

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
        require("bokeh.server.server", what="the dashboard", extra="dashboard")

        self.owner, self.board, self.in_flight, self.title = owner, board, in_flight, title
        self.token = None if address in LOOPBACK else secrets.token_urlsafe(16)
        self.address = address
        self.port = port or _free_port(address)
        self.pages: list[_Page] = []  # one a page opened, kept while it is served
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="cirrus-dashboard", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::") else self.address
        query = "" if self.token is None else f"?token={self.token}"
        return f"http://{host}:{self.port}/{query}"

    def _serve(self) -> None:
        from bokeh.server.server import Server
        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = IOLoop.current()
        origins = ["*"] if self.token else [f"{h}:{self.port}" for h in ("127.0.0.1", "localhost")]
        try:
            self._server = Server(
                {"/": self._page},
                io_loop=self._loop,
                address=self.address,
                port=self.port,
                allow_websocket_origin=origins,
            )
            self._server.start()
        except BaseException as failure:  # raised in the caller's thread
            self._failure = failure
            self._ready.set()
            return
        self._ready.set()
        self._loop.start()

    def close(self) -> None:
        """Stop serving; open pages stop updating."""
        if self._thread.is_alive():
            self._loop.add_callback(self._server.stop)
            self._loop.add_callback(self._loop.stop)
            self._thread.join(timeout=10)

    def stop_candidates(self, candidates) -> None:
        """What the page's buttons do: the owner's own ``stop_candidate``."""
        for candidate in candidates:
            self.owner.stop_candidate(int(candidate))

    def _page(self, doc) -> None:
        if self.token is not None:
            given = doc.session_context.request.arguments.get("token", [b""])[0].decode()
            if not hmac.compare_digest(given, self.token):
                from bokeh.models import Div

                doc.add_root(Div(text="This dashboard needs the token of its URL."))
                return
        page = _Page(doc, self)
        self.pages.append(page)
        doc.on_session_destroyed(lambda _: self.pages.remove(page))


class _Page:
    """One open page: its document, refreshed from the board."""

    def __init__(self, doc, dashboard: Dashboard):
        from bokeh.layouts import column, gridplot, row
        from bokeh.models import (
            Button,
            ColumnDataSource,
            CustomJS,
            DataTable,
            Div,
            NumberFormatter,
            TableColumn,
        )
        from bokeh.plotting import figure

        self.dashboard = dashboard
        self.stats = Div(text="starting...", width=880, height=24)
        # every candidate's curve in one source, a line each (multi_line): one update
        # and one redraw per figure at each refresh, whatever the number of candidates
        # (a source and a renderer per candidate made a refresh take seconds of the
        # driver's time at 12 candidates); named for scripts that read the page
        self.curves = ColumnDataSource(curve_columns(), name="curves")
        self.figures = {}
        for name, label in (("score", "held-out score"), ("loss", "training loss")):
            for x, x_label in (("seconds", "seconds"), ("cost_usd", "estimated cost ($)")):
                plot = figure(height=260, width=430, x_axis_label=x_label, y_axis_label=label)
                legend = {"legend_field": "label"} if (name, x) == ("score", "cost_usd") else {}
                plot.multi_line(x, name, source=self.curves, color="color", **legend)
                self.figures[name, x] = plot
        self.figures["score", "cost_usd"].legend.location = "top_left"
        self._shown = None  # what the page shows now, to send only changes
        self.table_source = ColumnDataSource(snapshot_columns(), name="candidates")
        number = NumberFormatter(format="0.0000")
        self.table = DataTable(
            source=self.table_source,
            columns=[
                TableColumn(field="candidate", title="#", width=40),
                TableColumn(field="params", title="parameters", width=330),
                TableColumn(field="epoch", title="epoch", width=70),
                TableColumn(field="score", title="score", formatter=number, width=90),
                TableColumn(
                    field="cost_usd",
                    title="cost ($)",
                    formatter=NumberFormatter(format="0.000000"),
                    width=90,
                ),
                TableColumn(field="state", title="state", width=170),
            ],
            sortable=True,
            selectable="checkbox",
            autosize_mode="none",  # fixed column widths: no layout pass at each update
            width=880,
            height=260,
        )
        # The browser's table redraws its rows when its view's indices change, i.e. when
        # the number of rows does; new values in as many rows need a nudge (one line
        # of JavaScript, run in the page).
        self.table_source.js_on_change(
            "data", CustomJS(args={"view": self.table.view}, code="view.change.emit()")
        )
        stop_selected = Button(label="Stop selected candidates", button_type="warning")
        stop_selected.on_click(self._stop_selected)
        stop_all = Button(label="Stop all", button_type="danger")
        stop_all.on_click(self._stop_all)
        grid = gridplot(
            [[self.figures[n, "seconds"], self.figures[n, "cost_usd"]] for n in ("score", "loss")]
        )
        doc.title = f"sklearn-cirrus {dashboard.title}"
        doc.add_root(column(self.stats, grid, self.table, row(stop_selected, stop_all)))
        self.refresh()
        doc.add_periodic_callback(self.refresh, REFRESH_MS)

    def refresh(self) -> None:
        from bokeh.palettes import Category10_10

        now = snapshot(self.dashboard.board, self.dashboard.in_flight)
        stats = now["stats"]
        self.stats.text = (
            f"<b>{stats['samples_per_second']:,.0f}</b> samples/s &nbsp; "
            f"<b>{stats['in_flight']}</b> invocations in flight &nbsp; "
            f"<b>{stats['failures']}</b> failed invocations &nbsp; "
            f"<b>{stats['relaunches']}</b> relaunched"
        )
        shown = (
            now["table"],
            [(i, len(c["loss"]), c["loss"][-1]) for i, c in now["curves"].items()],
        )
        if _same(shown, self._shown):
            return
        self._shown = shown
        curves = curve_columns()
        start = min((curve["seconds"][0] for curve in now["curves"].values()), default=0.0)
        for i, curve in now["curves"].items():
            curves["candidate"].append(i)
            curves["label"].append(now["table"]["params"][i])
            curves["color"].append(Category10_10[i % 10])
            drawn = _spread(len(curve["loss"]), MAX_POINTS)
            for name in ("cost_usd", "score", "loss"):
                curves[name].append(curve[name][drawn])
            curves["seconds"].append(curve["seconds"][drawn] - start)
        self.curves.data = curves
        self.table_source.data = now["table"]

    def _selected(self) -> list[int]:
        rows = self.table_source.selected.indices
        return [self.table_source.data["candidate"][r] for r in rows]

    def _stop_selected(self) -> None:
        self.dashboard.stop_candidates(self._selected())

    def _stop_all(self) -> None:
        self.dashboard.stop_candidates(range(len(self.table_source.data["candidate"])))


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
            print(f"fit dashboard: {self.url}", flush=True)
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


def curve_columns() -> dict:
    return {
        "candidate": [],
        "label": [],
        "color": [],
        "seconds": [],
        "cost_usd": [],
        "score": [],
        "loss": [],
    }


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


def snapshot_columns() -> dict:
    return {"candidate": [], "params": [], "epoch": [], "score": [], "cost_usd": [], "state": []}


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1" if address == "localhost" else address, 0))
        return probe.getsockname()[1]
