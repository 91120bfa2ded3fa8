"""How the bridge proves who it is to a ResourceManager.

Simple auth (``hadoop.http.authentication.type=simple``) takes the caller's name from the ``user.name`` query
parameter; writes need a name (node resources) or an admin name (queues, labels). Secure clusters use SPNEGO
(Kerberos): each request carries ``Authorization: Negotiate <token>``. The bridge does not obtain Kerberos
tickets itself yet: ``HeaderAuth`` takes a provider of that header (for example one built on ``pyspnego`` with
a keytab), so that a deployment can plug it in without the bridge depending on a Kerberos stack it cannot test
here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol


class Auth(Protocol):
    """Adds credentials to one request."""

    def params(self) -> Mapping[str, str]:
        """Query parameters to add."""
        ...

    def headers(self) -> Mapping[str, str]:
        """Headers to add (called per request, so that a token can be refreshed)."""
        ...


class SimpleAuth:
    """``?user.name=<user>``: pseudo authentication, the default on clusters without Kerberos."""

    def __init__(self, user: str) -> None:
        self.user = user

    def params(self) -> Mapping[str, str]:
        return {"user.name": self.user}

    def headers(self) -> Mapping[str, str]:
        return {}


class HeaderAuth:
    """Headers from a provider, e.g. ``lambda: {"Authorization": "Negotiate " + token()}`` for SPNEGO."""

    def __init__(self, provider: Callable[[], Mapping[str, str]]) -> None:
        self._provider = provider

    def params(self) -> Mapping[str, str]:
        return {}

    def headers(self) -> Mapping[str, str]:
        return self._provider()


__all__ = ["Auth", "HeaderAuth", "SimpleAuth"]
