"""The live page of a running search: served on loopback, kept up to date, its stops the
search's own, a token anywhere else, and nothing imported unless asked for."""

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import browser
import numpy as np
import pytest
from sklearn.datasets import make_classification

from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier

pytest.importorskip("bokeh", reason="pip install 'sklearn-cirrus[dashboard]'")


def _models(session, kind: str) -> list:
    return [model for model in session.document.models if type(model).__name__ == kind]


def _wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the page never showed it"
        time.sleep(0.05)


LONG = 10**4  # epochs: the search runs until a test stops it
# where the browser test leaves its screenshot (CI keeps the folder)
ARTIFACTS = Path(
    os.environ.get("CIRRUS_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts")
)


@pytest.fixture
def running_search():
    """A 4-candidate search with its dashboard, running in a thread until stopped."""
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=0)
    search = ServerlessGridSearchCV(
        ServerlessSGDClassifier(tol=None, max_iter=LONG, random_state=0),
        {"alpha": [1e-5, 1e-4, 1e-3, 1e-2]},
        cv=3,
        executor="threads",
        max_workers=12,  # every fit at once: none waits for a slot the others hold
        refit=False,  # the best refitted would run all LONG epochs
        dashboard=True,
    )
    runner = threading.Thread(target=search.fit, args=(X, y))
    runner.start()
    _wait_for(lambda: hasattr(search, "dashboard_url_") or not runner.is_alive())
    yield search, runner
    if runner.is_alive():
        search._dashboard.stop_candidates(range(4))  # "Stop the search"
    runner.join()


def test_a_running_search_serves_a_page_that_updates_itself(running_search):
    from bokeh.client import pull_session

    search, runner = running_search
    url = search.dashboard_url_
    assert url.startswith("http://127.0.0.1:")
    page = urllib.request.urlopen(url)
    assert page.status == 200 and "bokeh" in page.read().decode().lower()
    with pull_session(url=url) as session:  # the document a browser gets
        table = _models(session, "DataTable")[0].source
        assert set(table.data) == {"candidate", "params", "epoch", "score", "cost_usd", "state"}
        assert len(_models(session, "Button")) == 2
    # the page's document refreshes itself from the search, without a reload
    pages = search._dashboard.pages
    _wait_for(lambda: pages and len(pages[0].table_source.data["candidate"]) == 4)
    table = pages[0].table_source
    first = max(table.data["epoch"])
    _wait_for(lambda: max(table.data["epoch"]) > first)
    assert "alpha=0.001" in table.data["params"]
    # a line per candidate, in each figure
    assert sorted(pages[0].curves.data["candidate"]) == [0, 1, 2, 3]
    assert all(len(plot.renderers) == 1 for plot in pages[0].figures.values())
    assert "samples/s" in pages[0].stats.text
    pages[0]._stop_all()  # the "Stop the search" button's own callback
    runner.join()
    assert set(search.cv_results_["stopped_by"]) == {"by hand"}
    # the page goes with the search
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_a_stop_from_the_page_is_the_searchs_own(running_search):
    search, runner = running_search
    _wait_for(lambda: any(len(f["epoch"]) for fits in search._board.curves()[1] for f in fits))
    # no page open, no rule: the fits are not scored at their epochs
    assert all(np.isnan(f["score"]).all() for fits in search._board.curves()[1] for f in fits)
    # what "Stop the search" calls (and "Stop selected candidates", with the rows chosen)
    search._dashboard.stop_candidates(range(4))
    runner.join()
    results = search.cv_results_
    assert set(results["stopped_by"]) == {"by hand"}
    assert all(results[f"split{k}_stop_epoch"].max() < LONG for k in range(3))
    assert np.isfinite(results["mean_test_score"]).all()  # scored as they stood
    assert max(search.cv_results_["split0_stop_epoch"]) >= 1


def test_bound_beyond_loopback_the_page_needs_its_token():
    from bokeh.client import pull_session

    from sklearn_cirrus.dashboard import Dashboard
    from sklearn_cirrus.search_board import SearchBoard

    board = SearchBoard(early_stopping=None, scorer=None, X=None, y=None, splits=[])
    dashboard = Dashboard(owner=None, board=board, in_flight=lambda: 0, address="0.0.0.0")
    try:
        assert "?token=" in dashboard.url
        bare = dashboard.url.split("?")[0]
        with pull_session(url=bare) as session:
            assert not _models(session, "DataTable")
            assert "token" in _models(session, "Div")[0].text
        with pull_session(url=bare, arguments={"token": dashboard.token}) as session:
            assert _models(session, "DataTable")
    finally:
        dashboard.close()


def test_nothing_of_the_dashboard_is_imported_unless_asked():
    code = (
        "import sys, sklearn_cirrus, sklearn_cirrus.model_selection\n"
        "print('bokeh' in sys.modules, 'sklearn_cirrus.dashboard' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_long_fit_gets_its_own_page_stopped_from_it_and_kept_after():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_cirrus.dashboard import FitDashboard

    X, y = make_classification(n_samples=60_000, n_features=20, random_state=0)
    watch = FitDashboard(validation=(X[:2_000], y[:2_000]))
    model = ServerlessSGDClassifier(
        tol=None, max_iter=LONG, executor="threads", n_workers=2, random_state=0
    )
    pipeline = make_pipeline(StandardScaler(), model).set_callbacks(watch)
    runner = threading.Thread(target=pipeline.fit, args=(X, y))
    runner.start()
    try:
        _wait_for(lambda: watch.url is not None and len(watch.board.record(0, 0).epoch) >= 3)
        urllib.request.urlopen(watch.url)  # opening the page makes its document here
        _wait_for(lambda: watch._dashboard.pages)
        page = watch._dashboard.pages[0]
        _wait_for(
            lambda: page.table_source.data["epoch"] and page.table_source.data["epoch"][0] >= 3
        )
        record = watch.board.record(0, 0)
        # the whole pipeline scored on the validation rows: its accuracy, not a loss
        assert all(0.8 < score <= 1 for score in record.score)
        assert "ServerlessSGDClassifier" in page.table_source.data["params"][0]
        page._stop_all()  # the page's "Stop all"
        runner.join()
    finally:
        watch.stop()
        runner.join()
    assert 3 <= model.n_iter_ < LONG
    assert model.n_iter_ == len(watch.board.record(0, 0).epoch)
    # the page outlives the fit, until closed
    assert urllib.request.urlopen(watch.url).status == 200
    _wait_for(lambda: page.table_source.data["state"] == ["stopped (by hand)"])
    watch.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(watch.url, timeout=5)


@pytest.fixture
def chromium():
    from conftest import require_server

    for binary in ("chromium", "chromedriver"):
        require_server(binary, "apt-get install chromium chromium-driver")
    pytest.importorskip("selenium", reason="pip install selenium")
    driver = browser.headless_chromium()
    yield driver
    driver.quit()


def test_in_a_real_browser_the_curves_grow_and_a_click_stops_a_candidate(
    always_fan_out, running_search, chromium
):
    # on workers (always_fan_out, set before the search starts), so that the page shows
    # what fits cost: its screenshot is the one of docs/dashboard.md
    search, runner = running_search
    chromium.get(search.dashboard_url_)
    # the page loads and draws a curve per candidate, held-out score and loss
    _wait_for(lambda: len(browser.curves(chromium)) == 4)
    first = len(browser.curves(chromium)["1"]["loss"])
    _wait_for(lambda: len(browser.curves(chromium)["1"]["loss"]) > first)
    # the table's cells as drawn follow the epochs too
    drawn = int(browser.table_row(chromium, "1")[4])
    _wait_for(lambda: int(browser.table_row(chromium, "1")[4]) > drawn)
    # scored since the page opened (NaN, null in the browser, before)
    assert 0.5 < browser.curves(chromium)["1"]["score"][-1] <= 1
    # tick candidate 1's row, click "Stop selected candidates"
    browser.tick_row(chromium, "1")
    _wait_for(lambda: search._dashboard.pages[0].table_source.selected.indices == [1])
    browser.button(chromium, "Stop selected").click()
    _wait_for(lambda: search._board.stopped() == {1: "by hand"})
    # the table, as drawn, says so
    _wait_for(lambda: browser.table_row(chromium, "1")[-1] == "stopped (by hand)")
    assert browser.table_row(chromium, "0")[-1] == "running"
    # the others go on past the epoch candidate 1 stopped at, then the test stops them
    _wait_for(lambda: search._board.finished(1))
    stopped_at = max(search._board.record(1, k).n_iter for k in range(3))
    _wait_for(
        lambda: all(
            len(search._board.record(i, k).epoch) > stopped_at + 1
            for i in (0, 2, 3)
            for k in range(3)
        )
    )
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    assert chromium.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    search._dashboard.stop_candidates([0, 2, 3])
    runner.join()
    epochs = np.array([search.cv_results_[f"split{k}_stop_epoch"] for k in range(3)])
    assert epochs[:, 1].max() == stopped_at < epochs[:, [0, 2, 3]].min()


def test_a_long_curve_is_drawn_with_at_most_max_points_spread_to_its_last():
    from sklearn_cirrus.dashboard import MAX_POINTS, _spread

    np.testing.assert_array_equal(_spread(7, MAX_POINTS), np.arange(7))
    drawn = _spread(10 * MAX_POINTS + 3, MAX_POINTS)
    assert len(drawn) == MAX_POINTS and drawn[0] == 0 and drawn[-1] == 10 * MAX_POINTS + 2
    assert np.ptp(np.diff(drawn)) <= 1  # evenly spread
