"""The broker's end of the node agents' streams: a gRPC server (grpc.aio, in the control loop's event loop) that
authenticates each agent, validates each sample, keeps the latest one per node and hands every sample to the fast
path at once.

**Auth.** Every stream must carry ``authorization: Bearer <token>``, compared in constant time; without it the
stream ends ``UNAUTHENTICATED`` before any sample is read. With ``ServerTls`` the port speaks TLS, and with a client
CA it requires client certificates signed by it (mutual TLS) as well. The token names no node: any agent holding it
may report for any node, so keep it as secret as the agents' service account.

**Bad input.** A payload that is not a valid sample ends that stream with ``INVALID_ARGUMENT`` naming the field;
a stream that switches node names mid-way too. Messages above ``max_message_bytes`` are refused by gRPC itself
(``RESOURCE_EXHAUSTED``). Nothing an agent sends can stop the server or another agent's stream.

**The callback.** ``on_sample(sample, received_at_s)`` is a coroutine function awaited inside the sending node's
stream, before that sample is acknowledged: samples of one node reach it in order, samples of different nodes
concurrently. A slow callback holds back only its node's stream (gRPC flow control then slows that agent); heavy
work belongs in a task the callback starts. An exception in the callback is logged, never sent to the agent (the
agent did nothing wrong), and the stream goes on.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import grpc
from grpc import aio

from broker.errors import InputError
from plugins.node_agent.wire import (
    MAX_MESSAGE_BYTES,
    REPORT,
    SERVICE,
    NodeSample,
    ReportAck,
    decode_sample,
    encode,
)

log = logging.getLogger(__name__)

OnSample = Callable[[NodeSample, float], Awaitable[None]]
"""``async def on_sample(sample, received_at_s)``: see the module docstring."""

_DETAILS_MAX = 1000
"""Longest status message sent back (a sample with 10,000 bad containers must not make a huge trailer)."""


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The hub's certificate and key (PEM); with ``client_ca``, agents must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials; ``InputError`` naming the file that cannot be read."""
        key, cert = _read_pem(self.key, "tls.key"), _read_pem(self.cert, "tls.cert")
        client_ca = _read_pem(self.client_ca, "tls.client_ca") if self.client_ca else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                           require_client_auth=client_ca is not None)


@dataclass(frozen=True, slots=True)
class AgentLag:
    """How far behind a node's agent is: ``age_s`` since its last sample was taken (grows while the agent is
    silent), and ``receive_delay_s`` from taking that sample to receiving it (network and clock skew)."""

    node: str
    seq: int
    age_s: float
    receive_delay_s: float
    received_at_s: float


@dataclass
class HubCounters:
    """Running totals, for metrics."""

    samples: int = 0
    streams_open: int = 0
    unauthenticated: int = 0
    invalid: int = 0
    callback_errors: int = 0


class AgentHub:
    """The gRPC server the node agents stream to (see the module docstring)."""

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0, tls: ServerTls | None = None,
                 on_sample: OnSample | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 max_streams: int = 20_000, clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise InputError("token", "the agents' token is empty")
        self._expected = f"Bearer {token}".encode()
        self.host = host
        self._port = port
        self.tls = tls
        self.on_sample = on_sample
        self.refusing: Callable[[], str | None] | None = None
        """When set and it returns a reason, streams are refused with it (see ``_check_serving``)."""
        self.max_message_bytes = max_message_bytes
        self.max_streams = max_streams
        self._clock = clock
        self._server: aio.Server | None = None
        self._latest: dict[str, NodeSample] = {}
        self._received_at: dict[str, float] = {}
        self.counters = HubCounters()

    @property
    def port(self) -> int:
        """The port listened on (the one bound when ``port=0`` was asked)."""
        return self._port

    async def start(self) -> int:
        """Bind and serve; returns the port. ``InputError`` when the address cannot be bound."""
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        server = aio.server(options=options, maximum_concurrent_rpcs=self.max_streams)
        handler = grpc.stream_stream_rpc_method_handler(self._report)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {REPORT: handler}),))
        address = f"{self.host}:{self._port}"
        port: int
        try:
            if self.tls is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, self.tls.credentials())
        except RuntimeError as exc:
            raise InputError("agents.listen", f"cannot listen on {address}: {exc}") from None
        if port == 0:
            raise InputError("agents.listen", f"cannot listen on {address}")
        await server.start()
        self._server, self._port = server, port
        return port

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving; open streams get ``grace_s`` to finish, then are cancelled (their agents reconnect)."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def __aenter__(self) -> AgentHub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop(grace_s=0)

    def latest(self) -> Mapping[str, NodeSample]:
        """The newest sample of every node heard from (a read-only view)."""
        return MappingProxyType(self._latest)

    def lag(self, now_s: float | None = None) -> dict[str, AgentLag]:
        """Per node, how far behind its agent is (see ``AgentLag``)."""
        now = self._clock() if now_s is None else now_s
        return {
            node: AgentLag(node, sample.seq, max(now - sample.sampled_at_s, 0.0),
                           self._received_at[node] - sample.sampled_at_s, self._received_at[node])
            for node, sample in self._latest.items()
        }

    async def _report(self, requests: AsyncIterator[bytes], context: aio.ServicerContext) -> AsyncIterator[bytes]:
        """One agent's stream: authenticate, then validate, keep, hand on and acknowledge each sample."""
        if not self._authorized(context.invocation_metadata()):
            self.counters.unauthenticated += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        await self._check_serving(context)
        self.counters.streams_open += 1
        node: str | None = None
        try:
            async for raw in requests:
                try:
                    sample = decode_sample(raw)
                    if node is not None and sample.node != node:
                        raise InputError("node", f"changed from {node!r} to {sample.node!r} on one stream")
                except InputError as exc:
                    self.counters.invalid += 1
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:_DETAILS_MAX])
                await self._check_serving(context)
                node = sample.node
                received_at = self._clock()
                self._latest[node] = sample
                self._received_at[node] = received_at
                self.counters.samples += 1
                await self._hand_on(sample, received_at)
                yield encode(ReportAck(node=node, seq=sample.seq, received_at_s=received_at))
        finally:
            self.counters.streams_open -= 1

    async def _check_serving(self, context: aio.ServicerContext) -> None:
        """End the stream ``UNAVAILABLE`` while ``refusing`` gives a reason (a follower replica): the agent
        reconnects, and through the Service reaches the replica that serves (the leader)."""
        reason = self.refusing() if self.refusing is not None else None
        if reason:
            await context.abort(grpc.StatusCode.UNAVAILABLE, reason[:_DETAILS_MAX])

    def _authorized(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
                return hmac.compare_digest(given, self._expected)
        return False

    async def _hand_on(self, sample: NodeSample, received_at: float) -> None:
        if self.on_sample is None:
            return
        try:
            await self.on_sample(sample, received_at)
        except Exception:
            self.counters.callback_errors += 1
            log.exception("on_sample failed for node %s (seq %d)", sample.node, sample.seq)


def _read_pem(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror or exc}") from None


__all__ = ["AgentHub", "AgentLag", "HubCounters", "OnSample", "ServerTls"]
