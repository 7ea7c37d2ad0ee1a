"""A real browser for the tests and benchmarks of the dashboard: Debian's headless
chromium driven by selenium, and scripts that read a Bokeh page as the browser has it."""

from __future__ import annotations

import shutil

# every background service off: this machine's network is loopback only, and chromium's
# own connections would be refused, many at a time
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,1100",
)

# every element of the page, through the shadow roots Bokeh draws its widgets in
ALL_ELEMENTS = """
function all(root, out) {
  for (const el of root.querySelectorAll('*')) {
    out.push(el);
    if (el.shadowRoot) all(el.shadowRoot, out);
  }
  return out;
}
const elements = all(document, []);
"""


def headless_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid, from /proc."""
    import os

    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            found.setdefault(parent, []).append(int(entry))
    return found


def processes(driver) -> list[int]:
    """The pids of this browser's processes: its driver's and every descendant."""
    below = children()
    todo, seen = [driver.service.process.pid], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(below.get(pid, []))
    return seen


def lower_priority(driver, niceness: int = 19) -> list[int]:
    """Set every process of this browser to ``niceness`` (chromium sets its own
    processes' priorities as it starts them: a niceness inherited from its driver does
    not last). Returns the niceness of each, read back."""
    import os

    pids = processes(driver)
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
        except OSError:
            pass
    return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids if os.path.exists(f"/proc/{pid}")]


def cpu_seconds(driver) -> float:
    """The CPU time the browser's processes running now have used."""
    import os

    total = 0
    for pid in processes(driver):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def curves(driver) -> dict[int, dict[str, list]]:
    """The dashboard's curves as the browser holds them: candidate -> its columns."""
    return (
        driver.execute_script(
            "const docs = window.Bokeh ? Bokeh.documents : [];"
            "const source = docs.length ? docs[0].get_model_by_name('curves') : null;"
            "if (!source) return {};"
            "const out = {};"
            "source.data.candidate.forEach((c, k) => { out[c] = {"
            "  loss: Array.from(source.data.loss[k]), score: Array.from(source.data.score[k])}; });"
            "return out;"
        )
        or {}
    )


def button(driver, label: str):
    """The page's button whose text starts with ``label``."""
    return driver.execute_script(
        ALL_ELEMENTS
        + "return elements.find(e => e.tagName == 'BUTTON'"
        + " && e.textContent.startsWith(arguments[0]));",
        label,
    )


FIND_ROW = ALL_ELEMENTS + (
    "const row = elements.find(e => e.classList.contains('slick-row')"
    "  && e.querySelectorAll('.slick-cell')[2].textContent == arguments[0]);"
)


def table_row(driver, first_cell: str) -> list[str]:
    """The cells' text, as drawn, of the table row whose first data cell (after the row
    number and the checkbox) reads ``first_cell``."""
    return driver.execute_script(
        FIND_ROW
        + "return row ? Array.from(row.querySelectorAll('.slick-cell'), c => c.textContent) : [];",
        first_cell,
    )


def tick_row(driver, first_cell: str, tries: int = 20) -> None:
    """Click the checkbox of that row, as a user would; the table redraws its rows at
    every update, so a row found may be gone by the click: find it again."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(tries):
        box = driver.execute_script(FIND_ROW + "return row.querySelector('input');", first_cell)
        try:
            box.click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"the row of {first_cell} was redrawn at every try to click it")
