"""How the bridge proves who it is to a ResourceManager: simple auth, or SPNEGO (HTTP Negotiate).

Simple auth (``hadoop.http.authentication.type=simple``) takes the caller's name from the ``user.name`` query
parameter; writes need a name (node resources) or an admin name (queues, labels).

Secure clusters use SPNEGO, HTTP Negotiate (RFC 4559), handled by ``SpnegoAuth`` with ``pyspnego``:

1. a request goes out with the RM's session cookie (``hadoop.auth``) when the bridge has one for that RM;
2. the RM answers 401 with ``WWW-Authenticate: Negotiate`` when there is no valid cookie (none yet, expired,
   or signed by another RM of the pair); the bridge then steps a security context for ``HTTP@<rm host>``
   and sends the request again with ``Authorization: Negotiate <base64 token>``, as many legs as the
   mechanism needs (Kerberos: one; NTLM inside Negotiate: two);
3. the RM's final answer carries its own token (``WWW-Authenticate: Negotiate <token>``): the bridge checks it
   (mutual authentication), so an answer from something that cannot prove to be the RM is refused, and keeps
   the ``hadoop.auth`` cookie the RM sets, so that later requests (and pipelined batches) do not negotiate
   again until the RM stops accepting it.

Cookies are kept by ``SpnegoAuth`` itself, one per RM origin (scheme, host and port): the HTTP client keeps
none, because cookies are per host, not per port, and two RMs of a pair on one host would otherwise be sent
each other's cookie. One negotiation runs at a time per RM; requests that were refused meanwhile are sent again
with the cookie it obtained instead of negotiating themselves.

Credentials come from the process's environment, never from the configuration: a Kerberos ticket cache
(``kinit``) or a client keytab (``KRB5_CLIENT_KTNAME``) through GSSAPI (``pyspnego[kerberos]``); without
GSSAPI ``pyspnego`` speaks NTLM inside Negotiate, with the credentials of ``NTLM_USER_FILE``, which is how the
tests exercise this exact code path without a KDC. Missing credentials are a ``PermanentPeerError`` that says
how to provide them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Protocol

import httpx
import spnego
from spnego.exceptions import SpnegoError

from broker.errors import PermanentPeerError
from broker.yarn_bridge.config import SpnegoAuthConfig, YarnCluster

COOKIE = "hadoop.auth"
"""The session cookie of Hadoop's AuthenticationFilter."""
MAX_LEGS = 4
"""Negotiation round trips before giving up (Kerberos needs one, NTLM two)."""


class Auth(Protocol):
    """Adds credentials to the requests sent to one RM."""

    def params(self) -> Mapping[str, str]:
        """Query parameters to add."""
        ...

    def headers(self, origin: str) -> Mapping[str, str]:
        """Headers to add to a request for ``origin`` (``http://rm1:8088``); called per request or batch, so
        that a token or session can change between them."""
        ...


class SimpleAuth:
    """``?user.name=<user>``: pseudo authentication, the default on clusters without Kerberos."""

    def __init__(self, user: str) -> None:
        self.user = user

    def params(self) -> Mapping[str, str]:
        return {"user.name": self.user}

    def headers(self, origin: str) -> Mapping[str, str]:
        return {}


class HeaderAuth:
    """Headers from a provider, for a deployment that fronts the RM with its own scheme (a bearer token at a
    proxy, say): ``HeaderAuth(lambda: {"Authorization": "Bearer " + token()})``."""

    def __init__(self, provider: Callable[[], Mapping[str, str]]) -> None:
        self._provider = provider

    def params(self) -> Mapping[str, str]:
        return {}

    def headers(self, origin: str) -> Mapping[str, str]:
        return self._provider()


class SpnegoAuth(httpx.Auth):
    """HTTP Negotiate with session cookies, per RM origin (see the module docstring). Async clients only."""

    requires_request_body = True

    def __init__(
        self,
        peer: str,
        principal: str | None = None,
        service: str = "HTTP",
        hostname_override: str | None = None,
    ) -> None:
        self.peer = peer
        self.principal = principal
        self.service = service
        self.hostname_override = hostname_override
        self._cookies: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def params(self) -> Mapping[str, str]:
        return {}  # the RM takes the caller from the authenticated principal; user.name is not sent

    def headers(self, origin: str) -> Mapping[str, str]:
        cookie = self._cookies.get(_origin(httpx.URL(origin)))
        return {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}

    def has_session(self, origin: str) -> bool:
        """True when the bridge holds a session cookie for ``origin`` (it may still have expired)."""
        return _origin(httpx.URL(origin)) in self._cookies

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("SpnegoAuth works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        origin = _origin(request.url)
        sent = self._cookies.get(origin)
        response = yield self._with_session(request, origin)
        if not _challenged(response):
            self._keep(origin, response)
            return
        async with self._locks.setdefault(origin, asyncio.Lock()):
            if self._cookies.get(origin, sent) != sent:  # another request negotiated while this one waited
                response = yield self._with_session(request, origin)
                if not _challenged(response):
                    self._keep(origin, response)
                    return
            self._cookies.pop(origin, None)
            request.headers.pop("Cookie", None)
            host = self.hostname_override or request.url.host
            context = spnego.client(
                self.principal, None, hostname=host, service=self.service, protocol="negotiate"
            )
            token: bytes | None = None
            for _leg in range(MAX_LEGS):
                out = self._step(context, token, host)
                request.headers["Authorization"] = "Negotiate " + base64.b64encode(out or b"").decode()
                response = yield request
                token = _negotiate_token(response, self.peer)
                if response.status_code != 401:
                    if token is not None and not context.complete:
                        self._step(context, token, host)
                    if response.status_code < 400 and not context.complete:
                        raise PermanentPeerError(
                            self.peer,
                            f"SPNEGO: {host} answered without completing mutual authentication "
                            "(no final Negotiate token): it did not prove to be the RM",
                            response.status_code,
                        )
                    self._keep(origin, response)
                    return
                if token is None:
                    raise PermanentPeerError(
                        self.peer,
                        f"SPNEGO: {host} refused the credentials of {self._who()} "
                        f"(401 to a Negotiate token): {response.text.strip()[:200]}",
                        401,
                    )
            raise PermanentPeerError(self.peer, f"SPNEGO: no agreement with {host} after {MAX_LEGS} legs", 401)

    def _step(self, context: spnego.ContextProxy, token: bytes | None, host: str) -> bytes | None:
        """One step of the security context; ``PermanentPeerError`` saying what to do when it fails."""
        try:
            return context.step(token)
        except SpnegoError as exc:
            if token is None:
                raise PermanentPeerError(
                    self.peer,
                    f"SPNEGO: no usable credentials of {self._who()} for {self.service}@{host} ({exc}); "
                    "get a ticket with kinit, or point KRB5_CLIENT_KTNAME at a keytab",
                ) from None
            raise PermanentPeerError(
                self.peer, f"SPNEGO: the token of {host} was not accepted ({exc})"
            ) from None

    def _who(self) -> str:
        return self.principal or "the default principal"

    def _with_session(self, request: httpx.Request, origin: str) -> httpx.Request:
        request.headers.pop("Authorization", None)
        request.headers.pop("Cookie", None)
        cookie = self._cookies.get(origin)
        if cookie:
            request.headers["Cookie"] = f"{COOKIE}={cookie}"
        return request

    def _keep(self, origin: str, response: httpx.Response) -> None:
        """Remember the session cookie the RM set (an empty one, set on refusal, forgets it)."""
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == COOKIE:
                value = rest.split(";", 1)[0].strip()
                if value in ("", '""'):
                    self._cookies.pop(origin, None)
                else:
                    self._cookies[origin] = value


def auth_for(cluster: YarnCluster) -> Auth:
    """The authentication the cluster's configuration asks for."""
    config = cluster.auth
    if isinstance(config, SpnegoAuthConfig):
        return SpnegoAuth(f"yarn-rm {cluster.name}", config.principal, config.service, config.hostname_override)
    return SimpleAuth(cluster.user)


def negotiate_challenge(values: list[str]) -> str | None:
    """The Negotiate challenge among ``WWW-Authenticate`` values: ``""`` (bare) or its token, else ``None``."""
    for value in values:
        for item in value.split(","):
            scheme, _, data = item.strip().partition(" ")
            if scheme.lower() == "negotiate":
                return data.strip()
    return None


def _challenged(response: httpx.Response) -> bool:
    challenge = negotiate_challenge(response.headers.get_list("www-authenticate"))
    return response.status_code == 401 and challenge is not None


def _negotiate_token(response: httpx.Response, peer: str) -> bytes | None:
    data = negotiate_challenge(response.headers.get_list("www-authenticate"))
    if not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise PermanentPeerError(peer, f"SPNEGO: the RM's Negotiate token is not base64: {data[:40]!r}") from None


def _origin(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


__all__ = ["COOKIE", "Auth", "HeaderAuth", "SimpleAuth", "SpnegoAuth", "auth_for", "negotiate_challenge"]
