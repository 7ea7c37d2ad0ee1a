"""Optional extras: a library that is missing fails with one message, the same everywhere,
that names what needed it and the extra that installs it."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


def missing_extra(what: str, library: str, extra: str) -> ImportError:
    """The error for ``what`` (a feature, as the user named it) needing ``library``."""
    return ImportError(f"{what} needs {library}: pip install 'sklearn-cirrus[{extra}]'")


def require(module: str, *, what: str, extra: str) -> ModuleType:
    """Import ``module`` of an optional extra, or raise :func:`missing_extra`'s error."""
    try:
        return import_module(module)
    except ImportError:
        raise missing_extra(what, module.split(".")[0], extra) from None
