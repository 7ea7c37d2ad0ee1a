"""What to say when the compiled parts are missing because Python found a source tree."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def import_error(package_file: str, module: str, cause: ImportError) -> ImportError:
    """The error to raise when ``module`` of the package at ``package_file`` (its
    ``__init__.py``) failed to import: as scikit-learn does, when Python found a source
    checkout (a clone's root is the current folder) whose extensions were never built,
    one that says how to build them; else ``cause`` itself."""
    here = Path(package_file).parent
    if (here / f"{module}.pyx").exists() and not any(
        (here / f"{module}{suffix}").exists() for suffix in EXTENSION_SUFFIXES
    ):
        return ImportError(
            f"sklearn_cirrus is imported from the source tree at {here.parent.parent}, "
            "whose compiled parts are not built. Build them in place with "
            "`pip install -e .` in that folder, or run Python from another folder to use "
            "the installed package."
        )
    return cause
