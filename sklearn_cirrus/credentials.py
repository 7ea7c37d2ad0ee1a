"""Credentials in URLs, kept out of whatever is shown: reprs, notebook views, messages.

A store URL may carry a password (``redis://:password@host:6379/0``, or
``?password=...``); wherever the package prints a URL or an estimator, the password
becomes ``***``. Pickles keep the URL as given: to keep a password out of them, give it
in the environment instead (``SKLEARN_CIRRUS_REDIS_PASSWORD``).
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^@\s'\"]*@", re.IGNORECASE)
_QUERY = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def redacted(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


class HiddenCredentialsMixin:
    """An estimator's repr and notebook view with the passwords of its URLs hidden; comes
    before scikit-learn's ``BaseEstimator`` among the bases."""

    def __repr__(self, N_CHAR_MAX=700):
        return redacted(super().__repr__(N_CHAR_MAX))

    def _repr_html_inner(self):
        return redacted(super()._repr_html_inner())

    def _repr_mimebundle_(self, **kwargs):
        return {kind: redacted(view) for kind, view in super()._repr_mimebundle_(**kwargs).items()}
