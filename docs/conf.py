"""Sphinx configuration of the sklearn-cirrus documentation site.

Build: ``pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html``.
"""

import sklearn_cirrus

project = "sklearn-cirrus"
copyright = "2026, the sklearn-cirrus developers"
release = version = sklearn_cirrus.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

autosummary_generate = True
autodoc_default_options = {"members": True}
# the optional backends' libraries are not needed to document their executors
autodoc_mock_imports = ["distributed", "lithops", "ray", "redis"]
# members are listed by the autosummary class template, not again by numpydoc
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# headings of the markdown pages become link targets (docs/model_selection.md#early-stopping)
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # run at every build, so that the pages show the examples' output and figures; they
    # fetch real datasets once (CI fills the data home first: .ci/fill_data_home.py)
    "plot_gallery": "True",
    "filename_pattern": r"\.py$",  # every example, not only plot_*.py
    "download_all_examples": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-cirrus {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Document what this package defines; members inherited from scikit-learn (``score``,
    ``get_params``...) are documented by scikit-learn, whose glossary they refer to."""
    defined_in = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
    if defined_in.startswith("sklearn."):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
