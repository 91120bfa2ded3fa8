"""The ResourceManager REST client: several RM addresses, the active one found and followed, failures typed.

HA: an RM pair (or triple) has one active member. A standby still answers ``GET /ws/v1/cluster/info`` with
``haState: STANDBY``, so the client asks each address in turn and keeps the ``ACTIVE`` one. Any other call to
a standby is answered with 307: with a ``Location`` (the active RM, query string kept) the client follows it
once and remembers that RM; with only a ``Refresh`` header (no active RM known, e.g. during a failover) it
forgets the active RM and retries after a back-off.

Failures, translated at this boundary (``broker.errors``):

=====================================  ==========================  =========
what happened                          error                       retried
=====================================  ==========================  =========
connect error, reset, timeout          ``TemporaryPeerError``      yes
502 / 503 / 504, standby without peer  ``TemporaryPeerError``      yes
no RM answers ``haState: ACTIVE``      ``TemporaryPeerError``      yes
4xx                                    ``PermanentPeerError``      no
500                                    ``PermanentPeerError``      no
=====================================  ==========================  =========

A 500 is not retried: the RM answers it for server-side exceptions that recur (updating a LOST node), and the
next reconcile tries again anyway. Retries back off exponentially from ``backoff_s``; a request that is not
safe to repeat (a scheduler-conf PUT whose first attempt may have been applied) is sent with ``retry=False``
and its caller re-reads the state instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from broker.errors import PermanentPeerError, TemporaryPeerError
from broker.yarn_bridge.auth import Auth, SimpleAuth
from broker.yarn_bridge.config import YarnCluster

API = "/ws/v1/cluster"
_TEMPORARY_STATUSES = frozenset({502, 503, 504})
_MAX_MESSAGE = 500


class RMClient:
    """Talks to the active ResourceManager of one cluster. Use as ``async with RMClient(cluster) as rm``."""

    def __init__(
        self,
        cluster: YarnCluster,
        auth: Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cluster = cluster
        self.peer = f"yarn-rm {cluster.name}"
        self._auth = auth or SimpleAuth(cluster.user)
        self._active: str | None = None
        self._discovery = asyncio.Lock()
        limits = httpx.Limits(
            max_connections=cluster.concurrency, max_keepalive_connections=cluster.concurrency
        )
        self._http = httpx.AsyncClient(
            timeout=cluster.timeout_s,
            limits=limits,
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> RMClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def active_url(self) -> str | None:
        """The RM currently believed active (``None`` until discovered)."""
        return self._active

    # --- HA ------------------------------------------------------------------------------------------------

    async def ha_states(self) -> dict[str, str]:
        """Each RM address's ``haState`` (``ACTIVE``, ``STANDBY`` ...) or ``unreachable: <reason>``."""
        out: dict[str, str] = {}
        for url in self.cluster.rm_urls:
            out[url] = await self._ha_state(url)
        return out

    async def _ha_state(self, url: str) -> str:
        try:
            response = await self._http.get(f"{url}{API}/info")
            response.raise_for_status()
            info = response.json().get("clusterInfo") or {}
            return str(info.get("haState", "UNKNOWN"))
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return f"unreachable: {type(exc).__name__}"

    async def _discover(self) -> str:
        """Find the active RM; one discovery at a time however many requests are waiting for it."""
        async with self._discovery:
            if self._active is not None:
                return self._active
            states = {}
            for url in self.cluster.rm_urls:
                states[url] = await self._ha_state(url)
                if states[url] == "ACTIVE":
                    self._active = url
                    return url
            raise TemporaryPeerError(
                self.peer,
                "no active ResourceManager: " + ", ".join(f"{u} {s}" for u, s in states.items()),
                self.cluster.backoff_s,
            )

    # --- requests ------------------------------------------------------------------------------------------

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET`` an RM resource and return its JSON."""
        return _json(self.peer, await self.request("GET", path, params=params))

    async def post(
        self, path: str, body: Any = None, params: Mapping[str, str] | None = None, retry: bool = True
    ) -> httpx.Response:
        """``POST`` a JSON body (or none)."""
        return await self.request("POST", path, params=params, body=body, retry=retry)

    async def put(self, path: str, body: Any, retry: bool = False) -> httpx.Response:
        """``PUT`` a JSON body; not retried by default (see the module docstring)."""
        return await self.request("PUT", path, body=body, retry=retry)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> httpx.Response:
        """Send to the active RM, following a standby's redirect; transient failures retried with back-off."""
        query = {**self._auth.params(), **(params or {})}
        attempt = 0
        while True:
            try:
                return await self._send(method, path, query, body)
            except TemporaryPeerError as exc:
                attempt += 1
                if not retry or attempt > self.cluster.retries:
                    raise TemporaryPeerError(
                        self.peer, f"{method} {path}: {exc.message} (after {attempt} attempt(s))", exc.delay_s
                    ) from None
                await asyncio.sleep(self.cluster.backoff_s * 2 ** (attempt - 1))

    async def _send(self, method: str, path: str, query: Mapping[str, str], body: Any) -> httpx.Response:
        base = self._active or await self._discover()
        headers = dict(self._auth.headers())
        url = f"{base}{API}{path}"
        url_params: Mapping[str, str] | None = query
        for _hop in range(2):
            try:
                response = await self._http.request(
                    method, url, params=url_params, json=body, headers=headers
                )
            except httpx.TransportError as exc:
                self._active = None  # the RM may have failed over: rediscover before the retry
                raise TemporaryPeerError(
                    self.peer, f"{type(exc).__name__} from {base}", self.cluster.backoff_s
                ) from None
            if response.status_code != 307:
                return self._check(method, path, response)
            location = response.headers.get("location")
            if not location:
                self._active = None
                raise TemporaryPeerError(
                    self.peer, f"{base} is standby and knows no active RM", self.cluster.backoff_s
                )
            target = urlsplit(location)
            base = self._active = f"{target.scheme}://{target.netloc}"
            url, url_params = location, None  # the RM keeps the query string in Location
        raise TemporaryPeerError(
            self.peer, "redirected more than once", self.cluster.backoff_s
        )

    def _check(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        message = f"{status} {_rm_message(response)}"
        if status in _TEMPORARY_STATUSES:
            raise TemporaryPeerError(self.peer, message, self.cluster.backoff_s)  # request() names the call
        raise PermanentPeerError(self.peer, f"{method} {path}: {message}", status)


def _rm_message(response: httpx.Response) -> str:
    """The RM's reason: ``RemoteException.message`` when it sent one, else the start of the body."""
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("RemoteException"), dict):
            remote = data["RemoteException"]
            return f"{remote.get('exception', '')}: {remote.get('message', '')}"[:_MAX_MESSAGE]
    except ValueError:
        pass
    return response.text.strip()[:_MAX_MESSAGE] or response.reason_phrase


def _json(peer: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PermanentPeerError(
            peer,
            f"{response.request.url.path}: answer is not JSON ({response.text[:80]!r})",
            response.status_code,
        ) from None


__all__ = ["API", "RMClient"]
