"""The documentation: every public estimator has an API page, and its HTML repr links it."""

import re
from pathlib import Path

import pytest

import sklearn_cirrus
from sklearn_cirrus.base import DOCS_URL

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
ESTIMATORS = [
    "ServerlessSGDClassifier",
    "ServerlessSGDRegressor",
    "ServerlessMatrixFactorization",
    "ServerlessGridSearchCV",
    "ServerlessRandomizedSearchCV",
]


def _documented_names() -> set[str]:
    """The names the API reference's autosummary tables generate pages for."""
    return set(re.findall(r"^   ([A-Za-z_][\w.]*)$", API.read_text(), flags=re.MULTILINE))


def test_every_public_name_has_an_api_page():
    documented = _documented_names()
    assert set(sklearn_cirrus.__all__) - {"__version__"} <= documented


@pytest.mark.parametrize("name", ESTIMATORS)
def test_html_repr_links_the_estimators_api_page(name):
    cls = getattr(sklearn_cirrus, name)
    estimator = cls(sklearn_cirrus.ServerlessSGDClassifier(), {}) if "Search" in name else cls()
    link = estimator._get_doc_link()
    # autosummary writes docs/generated/sklearn_cirrus.NAME.html for NAME in docs/api.rst
    assert link == f"{DOCS_URL}generated/sklearn_cirrus.{name}.html"
    assert name in _documented_names()
    assert link in estimator._repr_html_()


DOCS = API.parent
# the pages Sphinx writes itself: a page of ours with one of these names is replaced by it
# (docs/search.md became Sphinx's empty search box)
SPHINX_PAGES = {"search", "genindex", "py-modindex", "searchindex"}


def _toctree_pages() -> list[str]:
    """The pages the landing page's toctrees list, as Sphinx names them."""
    index = (DOCS / "index.rst").read_text()
    blocks = re.findall(r"^\.\. toctree::\n((?:   .*\n|\n)+)", index, flags=re.MULTILINE)
    entries = [line.strip() for block in blocks for line in block.splitlines()]
    return [entry for entry in entries if entry and not entry.startswith(":")]


def _title(page: str) -> str:
    """The first heading of a page's source (markdown ``# x``, or reST over a rule)."""
    sources = [DOCS / f"{page}.md", DOCS / f"{page}.rst"]
    if page == "auto_examples/index":  # sphinx-gallery writes it from the examples' README
        sources = [DOCS.parent / "examples" / "README.txt"]
    source = next((path for path in sources if path.exists()), None)
    assert source is not None, f"{page} in the toctree has no source"
    lines = source.read_text().splitlines()
    for line, underline in zip(lines, lines[1:] + [""], strict=True):
        if line.startswith("# "):
            return line[2:].strip()
        if line.strip() and underline and set(underline) == {"="}:
            return line.strip()
    raise AssertionError(f"{source} has no title")


def test_every_page_of_the_toctree_has_its_own_name_and_title():
    pages = _toctree_pages()
    assert "model_selection" in pages and "dashboard" in pages
    assert not SPHINX_PAGES & {page.rsplit("/", 1)[-1] for page in pages}
    titles = [_title(page) for page in pages]
    assert len(set(titles)) == len(titles), titles
    assert "Hyperparameter search" in titles and "The live dashboard" in titles


def test_the_landing_pages_first_example_runs_offline():
    import subprocess
    import sys

    index = (DOCS / "index.rst").read_text()
    code = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", index)[1]
    script = "\n".join(line[3:] for line in code.splitlines())
    # the block's last line is a value a notebook shows: printed here
    *body, last = [line for line in script.splitlines() if line.strip()]
    completed = subprocess.run(
        [sys.executable, "-c", "\n".join([*body, f"print(({last}))"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    score, cost = (float(v) for v in completed.stdout.strip().strip("()").split(","))
    assert score > 0.8 and 0 < cost < 0.01
