"""Credentials in URLs, kept out of what is shown and of what is kept.

A store URL may carry a password (``redis://:password@host:6379/0``, or
``?password=...``). An estimator or search given one sets the password aside as the
parameter is set: it holds the URL without it, so that neither ``get_params()``, a
clone, a pickle of it fitted or not, nor its repr holds the password, which stays in
this process's keyring (:func:`set_aside`) and is put back only where a store connects
(:func:`password_for`). Where an estimator is loaded from a pickle in another process,
the password comes from the environment (``SKLEARN_CIRRUS_REDIS_PASSWORD``), as for a
URL given without one. Workers in other processes receive it with the store's address
for the one fit. Wherever the package prints a URL, a password still in it becomes
``***``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^@\s'\"]*@", re.IGNORECASE)
_QUERY = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def redacted(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


# passwords set aside from URLs given in this process, by the account they open:
# (scheme, host, port, user) -> password
_KEYRING: dict[tuple, str] = {}


def _account(parts) -> tuple:
    return parts.scheme, parts.hostname, parts.port, parts.username or ""


def set_aside(value):
    """``value`` without its URL's password, which goes to this process's keyring;
    anything else (no URL, no password) as it is."""
    if not isinstance(value, str) or "://" not in value:
        return value
    parts = urlsplit(value)
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = [v for k, v in query if k.lower() == "password"]
    if parts.password is None and not in_query:
        return value
    # (the query's wins, as in redis-py's URLs)
    _KEYRING[_account(parts)] = in_query[-1] if in_query else unquote(parts.password)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode([(k, v) for k, v in query if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_for(url: str) -> str | None:
    """The password set aside in this process for the account ``url`` opens, if any."""
    return _KEYRING.get(_account(urlsplit(url)))


class PasswordSetAside:
    """A parameter whose URL's password is set aside (:func:`set_aside`) as it is set;
    the estimator's ``__dict__`` holds the rest, as for any parameter."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, estimator, owner=None):
        if estimator is None:
            return self
        try:
            return estimator.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, estimator, value):
        estimator.__dict__[self.name] = set_aside(value)


class HiddenCredentialsMixin:
    """An estimator whose ``store`` URL keeps no password (:class:`PasswordSetAside`),
    and whose repr and notebook view hide the passwords of any other URL; comes before
    scikit-learn's ``BaseEstimator`` among the bases."""

    store = PasswordSetAside()

    def __repr__(self, N_CHAR_MAX=700):
        return redacted(super().__repr__(N_CHAR_MAX))

    def _repr_html_inner(self):
        return redacted(super()._repr_html_inner())

    def _repr_mimebundle_(self, **kwargs):
        return {kind: redacted(view) for kind, view in super()._repr_mimebundle_(**kwargs).items()}
