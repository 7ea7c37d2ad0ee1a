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
