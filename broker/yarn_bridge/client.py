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

Batches of node pushes go through ``post_batch``: pipelined on a few keep-alive connections (``pipeline``)
instead of one httpx request each, because httpx's per-request CPU would dominate a 5,000-node sync. The rows
above hold for them unchanged: final answers are mapped by the same ``_check``, and everything else (a
redirect, a transient failure) continues on the httpx path, the pipelined try counting as the first attempt.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from broker.errors import PeerError, PermanentPeerError, TemporaryPeerError
from broker.yarn_bridge.auth import Auth, SpnegoAuth, auth_for, negotiate_challenge
from broker.yarn_bridge.config import YarnCluster
from broker.yarn_bridge.pipeline import Answer, NoAnswer, Post, post_pipelined

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
        self._auth = auth or auth_for(cluster)
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
            auth=self._auth if isinstance(self._auth, httpx.Auth) else None,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # keeps none; see ``auth``
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
            if response.status_code >= 400:
                return f"unusable: {self._message(response)}"
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
        return await self._retrying(method, path, {**self._auth.params(), **(params or {})}, body, retry)

    async def post_batch(self, writes: Sequence[tuple[str, Any]]) -> list[PeerError | None]:
        """``POST`` each ``(path, JSON body)``, pipelined (see ``pipeline``); per write ``None`` or its error.

        Only for writes that may be repeated (node-resource updates). Final answers are mapped as ``request``
        maps them: below 400 is done, 4xx and 500 are ``PermanentPeerError`` with the RM's message. Anything
        else goes through ``request``'s own path again: a standby's 307 (the ``Location`` is remembered as the
        active RM, as ``_send`` does, and the write follows it), and transient failures (no answer, 502/503/504)
        are retried with back-off, the pipelined try counting as the first attempt.
        """
        if not writes:
            return []
        query = dict(self._auth.params())
        target = f"?{urlencode(query)}" if query else ""
        try:
            base = self._active or await self._discover()
            if isinstance(self._auth, SpnegoAuth) and not self._auth.has_session(base):
                await self._retrying("GET", "/info", query, None, True)  # negotiate once, not per write
                base = self._active or base
        except TemporaryPeerError as exc:
            answers: list[Answer | NoAnswer] = [NoAnswer(exc.message)] * len(writes)
            base = "(no active RM)"
        else:
            headers = {
                "Accept": "application/json",
                "Content-Type": "application/json",
                **self._auth.headers(base),
            }
            connections = min(self.cluster.connections, self.cluster.concurrency)
            answers = await post_pipelined(
                base,
                [Post(f"{API}{path}{target}", _json_bytes(body)) for path, body in writes],
                headers,
                connections=connections,
                window=max(1, self.cluster.concurrency // connections),
                timeout_s=self.cluster.timeout_s,
            )
        out: list[PeerError | None] = [None] * len(writes)
        again: list[tuple[int, TemporaryPeerError | None]] = []
        for i, ((path, _body), answer) in enumerate(zip(writes, answers, strict=True)):
            if isinstance(answer, NoAnswer):
                self._active = None  # as in _send: the RM may have failed over
                again.append((i, self._temporary(f"{answer.reason} from {base}")))
            elif answer.status == 307:
                location = answer.header("location")
                if location:
                    target_url = urlsplit(location)
                    self._active = f"{target_url.scheme}://{target_url.netloc}"
                    again.append((i, None))  # following a redirect is not a retry
                else:
                    self._active = None
                    again.append((i, self._temporary(f"{base} is standby and knows no active RM")))
            elif answer.status == 401 and isinstance(self._auth, SpnegoAuth):
                again.append((i, None))  # the session ended: the httpx path negotiates a new one
            else:
                response = httpx.Response(
                    answer.status,
                    headers=list(answer.headers),
                    content=answer.body,
                    request=httpx.Request("POST", f"{base}{API}{path}"),
                )
                try:
                    self._check("POST", path, response)
                except TemporaryPeerError as exc:
                    again.append((i, exc))
                except PermanentPeerError as exc:
                    out[i] = exc
        gate = asyncio.Semaphore(self.cluster.concurrency)

        async def resend(i: int, failed: TemporaryPeerError | None) -> None:
            path, body = writes[i]
            async with gate:
                try:
                    await self._retrying("POST", path, query, body, True, failed)
                except PeerError as exc:
                    out[i] = exc

        await asyncio.gather(*(resend(i, failed) for i, failed in again))
        return out

    async def _retrying(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        retry: bool,
        failed: TemporaryPeerError | None = None,
    ) -> httpx.Response:
        """Send until the answer is not transient, backing off between attempts. ``failed``: a first attempt
        made elsewhere (a pipelined batch) that failed transiently and counts against ``retries``."""
        attempt = 0 if failed is None else 1
        while True:
            if failed is not None:
                if not retry or attempt > self.cluster.retries:
                    raise TemporaryPeerError(
                        self.peer,
                        f"{method} {path}: {failed.message} (after {attempt} attempt(s))",
                        failed.delay_s,
                    ) from None
                await asyncio.sleep(self.cluster.backoff_s * 2 ** (attempt - 1))
            try:
                return await self._send(method, path, query, body)
            except TemporaryPeerError as exc:
                failed = exc
                attempt += 1

    async def _send(self, method: str, path: str, query: Mapping[str, str], body: Any) -> httpx.Response:
        base = self._active or await self._discover()
        headers = dict(self._auth.headers(base))
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

    def _temporary(self, message: str) -> TemporaryPeerError:
        return TemporaryPeerError(self.peer, message, self.cluster.backoff_s)

    def _message(self, response: httpx.Response) -> str:
        """Status and the RM's reason; for a 401 asking for Negotiate under simple auth, what to configure."""
        message = f"{response.status_code} {_rm_message(response)}"
        asks_spnego = negotiate_challenge(response.headers.get_list("www-authenticate")) is not None
        if response.status_code == 401 and asks_spnego and not isinstance(self._auth, SpnegoAuth):
            message += " (the RM asks for SPNEGO: configure auth {kind: spnego} or --auth spnego)"
        return message

    def _check(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        message = self._message(response)
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


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


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
