"""The dashboard's page server: a process of its own, started by ``dashboard.Dashboard``.

Serving the page is the costly half of a dashboard: Bokeh builds, checks and writes each
page's updates in Python. In the driver's process that work competed for the GIL with the
threads that launch the fits' invocations and slowed the whole search down (+15% to +41%
of its wall time, measured); here it competes only for a core. The driver sends what the
page shows (``dashboard.page_state``), about twice a second while a page is open, over a
connection to this process; the page's buttons send the candidates to stop back.

Messages from the driver: first ``{"address", "port", "token", "title"}``, then
``{"stats": ..., "curves": ..., "table": ...}`` (``curves`` and ``table`` None when they
did not change). To the driver: ``("ready", None)`` or ``("failed", why)`` once, then
``("pages", n)`` when the number of open pages changes and ``("stop", [candidates])``
for a click. The process ends when the driver's end of the connection closes.
"""

from __future__ import annotations

import hmac
import signal
import sys
import threading
from functools import partial
from multiprocessing.connection import Connection


class PageServer:
    """The Bokeh server of the dashboard's pages, fed from the driver's connection."""

    def __init__(self, connection: Connection, *, address, port, token, title):
        self.connection, self.token, self.title = connection, token, title
        self.address, self.port = address, port
        self.latest = {"stats": None, "curves": None, "table": None}
        self.pages: list[_Page] = []
        self._sending = threading.Lock()  # the loop's thread and the reader both send

    def send(self, message) -> None:
        with self._sending:
            self.connection.send(message)

    def serve(self) -> None:
        import asyncio

        from bokeh.server.server import Server
        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        origins = ["*"] if self.token else [f"{h}:{self.port}" for h in ("127.0.0.1", "localhost")]
        try:
            server = Server(
                {"/": self._page},
                io_loop=IOLoop.current(),
                address=self.address,
                port=self.port,
                allow_websocket_origin=origins,
            )
            server.start()
        except Exception as failure:  # told to the driver, which raises it
            self.send(("failed", f"{type(failure).__name__}: {failure}"))
            return
        self.loop = IOLoop.current()
        threading.Thread(target=self._read, name="driver", daemon=True).start()
        self.send(("ready", None))
        self.loop.start()

    def _read(self) -> None:
        """Take the driver's updates until it closes the connection, then stop."""
        while True:
            try:
                update = self.connection.recv()
            except (EOFError, OSError):
                self.loop.add_callback(self.loop.stop)
                return
            self.loop.add_callback(self._show, update)

    def _show(self, update: dict) -> None:
        self.latest.update({key: value for key, value in update.items() if value is not None})
        for page in self.pages:
            page.doc.add_next_tick_callback(partial(page.show, update))

    def _page(self, doc) -> None:
        if self.token is not None:
            given = doc.session_context.request.arguments.get("token", [b""])[0].decode()
            if not hmac.compare_digest(given, self.token):
                from bokeh.models import Div

                doc.add_root(Div(text="This dashboard needs the token of its URL."))
                return
        page = _Page(doc, self)
        page.show(self.latest)
        self.pages.append(page)
        self.send(("pages", len(self.pages)))
        doc.on_session_destroyed(lambda _: self._page_closed(page))

    def _page_closed(self, page) -> None:
        self.pages.remove(page)
        self.send(("pages", len(self.pages)))


class _Page:
    """One open page: its document, shown from the driver's updates."""

    def __init__(self, doc, server: PageServer):
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

        self.doc, self.server = doc, server
        self.stats = Div(text="starting...", width=880, height=24)
        # every candidate's curve in one source, a line each (multi_line): one update
        # and one redraw per figure, whatever the number of candidates (a source and a
        # renderer per candidate made an update take seconds at 12 candidates); named
        # for scripts that read the page
        columns = ("candidate", "label", "color", "seconds", "cost_usd", "score", "loss")
        self.curves = ColumnDataSource(dict.fromkeys(columns, []), name="curves")
        self.figures = {}
        for name, label in (("score", "held-out score"), ("loss", "training loss")):
            for x, x_label in (("seconds", "seconds"), ("cost_usd", "estimated cost ($)")):
                plot = figure(height=260, width=430, x_axis_label=x_label, y_axis_label=label)
                legend = {"legend_field": "label"} if (name, x) == ("score", "cost_usd") else {}
                plot.multi_line(x, name, source=self.curves, color="color", **legend)
                self.figures[name, x] = plot
        self.figures["score", "cost_usd"].legend.location = "top_left"
        # field, title, width in pixels, number format
        table = (
            ("candidate", "#", 40, None),
            ("params", "parameters", 330, None),
            ("epoch", "epoch", 70, None),
            ("score", "score", 90, "0.0000"),
            ("cost_usd", "cost ($)", 90, "0.000000"),
            ("state", "state", 170, None),
        )
        self.table_source = ColumnDataSource({t[0]: [] for t in table}, name="candidates")
        self.table = DataTable(
            source=self.table_source,
            columns=[
                TableColumn(field=field, title=title, width=width)
                if digits is None
                else TableColumn(
                    field=field,
                    title=title,
                    width=width,
                    formatter=NumberFormatter(format=digits),
                )
                for field, title, width, digits in table
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
        doc.title = f"sklearn-cirrus {server.title}"
        doc.add_root(column(self.stats, grid, self.table, row(stop_selected, stop_all)))

    def show(self, update: dict) -> None:
        from bokeh.palettes import Category10_10

        stats = update["stats"]
        if stats is not None:
            self.stats.text = (
                f"<b>{stats['samples_per_second']:,.0f}</b> samples/s &nbsp; "
                f"<b>{stats['in_flight']}</b> invocations in flight &nbsp; "
                f"<b>{stats['failures']}</b> failed invocations &nbsp; "
                f"<b>{stats['relaunches']}</b> relaunched"
            )
        if update["curves"] is not None:
            curves = dict(update["curves"])
            curves["color"] = [Category10_10[i % 10] for i in curves["candidate"]]
            self.curves.data = curves
        if update["table"] is not None:
            self.table_source.data = update["table"]

    def _selected(self) -> list[int]:
        rows = self.table_source.selected.indices
        return [self.table_source.data["candidate"][r] for r in rows]

    def _stop_selected(self) -> None:
        self.server.send(("stop", self._selected()))

    def _stop_all(self) -> None:
        self.server.send(("stop", list(self.table_source.data["candidate"])))


def main(descriptor: int) -> None:
    # a Ctrl-C in the terminal reaches this process too: the driver decides when it ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(descriptor)
    PageServer(connection, **connection.recv()).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]))
