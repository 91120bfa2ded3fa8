"""The agent's loop: sample every ``interval_s`` and stream the samples to the broker, for as long as it runs.

- **One stream per connection** (``/broker.agent.v1.Agents/Report``, see ``wire``), carrying the bearer token read
  from ``token_file`` afresh on each connect (a rotated token is picked up at the next reconnect), over TLS when
  ``tls`` is given (with a client certificate for mutual TLS).
- **Liveness by acks.** The broker acks each sample; when no ack came for ``ack_timeout_s`` the agent drops the
  stream and reconnects, so a broker that hangs or a half-open connection costs seconds, not forever.
- **Reconnect with backoff** when the broker is down or ends the stream: ``backoff_initial_s`` doubling up to
  ``backoff_max_s``, reset once a sample is acknowledged. Samples are not queued while disconnected: the broker
  wants the node's present, not its past.
- **Find the leader again quickly.** A follower ends the stream ``UNAVAILABLE`` with details beginning
  ``NOT_LEADER``: the broker is up, only this replica does not take samples, and behind the Service the next
  connection may reach the one that does. From such a refusal until a sample is acknowledged the agent is
  *looking for the leader*: every failure (a follower's refusal, or a dead replica still behind the Service) is
  retried after a short random delay (``refind_delay_s``, 0.2-1 s), not the backoff, for at most
  ``refind_window_s`` after the refusal that started the search. If no leader took a sample by then (an election
  that does not end, a Service that reaches only followers), the backoff applies again, which bounds what a fleet
  of agents costs a broker without a leader. Each attempt opens its own connection (a channel with its own
  subchannel pool), so that the Service balances it afresh.
- **Fresh measurements per stream**: the sampler is primed at each connect, so the first sample after an outage
  measures one interval, not the outage.

Errors the agent cannot fix by retrying (a wrong token, a sample the broker refuses) are logged at ``error`` and still
retried at the slowest pace: the broker may be the one misconfigured, and it may be fixed without touching the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from grpc import aio

from broker.errors import InputError, TemporaryPeerError
from plugins.node_agent.wire import MAX_MESSAGE_BYTES, NOT_LEADER, REPORT_PATH, NodeSample, decode_ack, encode

log = logging.getLogger(__name__)

_FATAL = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
          grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.RESOURCE_EXHAUSTED}
"""Answers that retrying soon will not change: retried at ``backoff_max_s`` only."""


class SampleSource(Protocol):
    """What the loop samples (``plugins.node_agent.sampler.Sampler``)."""

    def prime(self) -> None: ...

    def sample(self) -> NodeSample: ...


def read_token(path: Path, field: str = "--token-file") -> str:
    """The bearer token in ``path`` (surrounding whitespace dropped); ``InputError`` naming ``field`` (the flag or
    configuration field it came from) when it cannot be read or is empty."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror or exc}") from None
    if not token:
        raise InputError(field, f"{path} is empty")
    return token


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS to the broker: ``ca`` verifies its certificate (the system's roots when ``None``); ``cert`` and ``key``
    are the agent's own, for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials; ``InputError`` naming the flag of a file that cannot be read."""
        if (self.cert is None) != (self.key is None):
            raise InputError("--tls-cert" if self.cert is None else "--tls-key", "give both --tls-cert and --tls-key")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "--tls-ca"),
            private_key=_read(self.key, "--tls-key"),
            certificate_chain=_read(self.cert, "--tls-cert"),
        )


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Where and how the agent reports (see the module docstring)."""

    broker: str
    token_file: Path
    interval_s: float = 1.0
    tls: ClientTls | None = None
    ack_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    refind_delay_s: tuple[float, float] = (0.2, 1.0)
    refind_window_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.05 <= self.interval_s <= 3600:
            raise InputError("--interval-s", f"must be within [0.05, 3600], got {self.interval_s}")
        if self.ack_timeout_s <= 0 or self.backoff_initial_s <= 0 or self.backoff_max_s < self.backoff_initial_s:
            raise InputError("agent", "ack_timeout_s, backoff_initial_s must be positive, backoff_max_s >= initial")
        low, high = self.refind_delay_s
        if not 0 < low <= high or self.refind_window_s < 0:
            raise InputError("agent", "refind_delay_s must be (low, high) with 0 < low <= high, refind_window_s >= 0")


@dataclass
class AgentStats:
    """What the agent did, for its logs and tests."""

    connects: int = 0
    sent: int = 0
    acked: int = 0
    not_leader: int = 0
    """Streams a follower refused (``NOT_LEADER``)."""
    last_error: str | None = None
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    """The latest errors, newest last (bounded: an agent may retry for months)."""


class Agent:
    """Samples a node and streams the samples to the broker until ``stop`` is set (see the module docstring)."""

    def __init__(self, config: AgentConfig, source: SampleSource) -> None:
        self.config = config
        self.source = source
        self.stats = AgentStats()
        self._last_ack = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Report until ``stop`` is set, reconnecting with backoff, or quickly while looking for the leader."""
        backoff = self.config.backoff_initial_s
        looking = _Looking(self.config.refind_window_s)
        while not stop.is_set():
            acked_before = self.stats.acked
            try:
                await self._stream(stop)
            except (aio.AioRpcError, TemporaryPeerError, InputError, OSError) as exc:
                message, fatal = _describe(exc)
                self.stats.last_error = message
                self.stats.errors.append(message)
                now = time.monotonic()
                if self.stats.acked > acked_before:
                    backoff = self.config.backoff_initial_s
                    looking.found()
                refused = _not_leader(exc)
                if refused:
                    self.stats.not_leader += 1
                first = looking.refused(now) if refused else False
                if looking.quick(now) and not fatal:
                    # A replica answered lately: the broker is up. Whatever failed (a follower, or a dead
                    # replica still behind the Service) is retried soon, and the backoff starts over after.
                    backoff = self.config.backoff_initial_s
                    delay = random.uniform(*self.config.refind_delay_s)
                    (log.info if first else log.debug)("broker %s: %s; looking for the leader (next try in %.2f s)",
                                                       self.config.broker, message, delay)
                else:
                    (log.error if fatal else log.warning)("broker %s: %s", self.config.broker, message)
                    delay = self.config.backoff_max_s if fatal else backoff
                    backoff = min(backoff * 2, self.config.backoff_max_s)
                await _wait(stop, delay)

    async def _stream(self, stop: asyncio.Event) -> None:
        """One connection: stream samples until ``stop``, raising what ended it otherwise."""
        token = read_token(self.config.token_file)
        # A subchannel pool of its own: gRPC would otherwise reuse a pooled connection to the same address, and
        # behind a Service only a new connection may reach another replica (the leader).
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.use_local_subchannel_pool", 1)]
        if self.config.tls is None:
            channel = aio.insecure_channel(self.config.broker, options=options)
        else:
            channel = aio.secure_channel(self.config.broker, self.config.tls.credentials(), options=options)
        async with channel:
            self.stats.connects += 1
            call = channel.stream_stream(REPORT_PATH)(metadata=(("authorization", f"Bearer {token}"),))
            reader = asyncio.create_task(self._read_acks(call))
            try:
                self.source.prime()
                self._last_ack = time.monotonic()
                next_at = time.monotonic() + self.config.interval_s
                while not await _wait(stop, next_at - time.monotonic(), reader):
                    next_at = max(next_at + self.config.interval_s, time.monotonic())
                    if reader.done():
                        reader.result()
                        raise TemporaryPeerError(self.config.broker, "the broker ended the stream")
                    if time.monotonic() - self._last_ack > self.config.ack_timeout_s:
                        raise TemporaryPeerError(self.config.broker, f"no ack for {self.config.ack_timeout_s:g} s")
                    await call.write(encode(self.source.sample()))
                    self.stats.sent += 1
                with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError):
                    await call.done_writing()
            except asyncio.InvalidStateError:
                # Writing to a call the broker already ended: the ack reader holds its status.
                await reader
                raise TemporaryPeerError(self.config.broker, "the broker ended the stream") from None
            finally:
                reader.cancel()
                call.cancel()

    async def _read_acks(self, call: aio.StreamStreamCall) -> None:
        async for raw in call:
            ack = decode_ack(raw)
            self.stats.acked += 1
            self._last_ack = time.monotonic()
            log.debug("ack seq %d (broker took it at %.3f)", ack.seq, ack.received_at_s)


class _Looking:
    """Whether the agent is looking for the leader: from a follower's refusal (``NOT_LEADER``) until a sample is
    acknowledged, retries are quick for ``window_s``; after that the backoff applies, however many refusals come.
    A search that heard no refusal for ``window_s`` (the broker was down meanwhile) is over: the next refusal opens
    a new window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.since: float | None = None
        self.last: float = 0.0

    def refused(self, now: float) -> bool:
        """A follower refused; true when that starts a search."""
        started = self.since is None or now - self.last > self.window_s
        if started:
            self.since = now
        self.last = now
        return started

    def found(self) -> None:
        """A sample was acknowledged: the search is over."""
        self.since = None

    def quick(self, now: float) -> bool:
        """Retry the next failure soon."""
        return self.since is not None and now - self.since < self.window_s


async def _wait(stop: asyncio.Event, seconds: float, reader: asyncio.Task[None] | None = None) -> bool:
    """Sleep ``seconds``, or until ``stop``, or until ``reader`` ends (the broker ended the stream: a refusal is
    seen at once, not at the next sample); true when stopped."""
    if seconds > 0 and (reader is None or not reader.done()):
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({stopped} if reader is None else {stopped, reader}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
    return stop.is_set()


def _not_leader(exc: Exception) -> bool:
    """A follower's refusal (see ``NOT_LEADER``)."""
    return (isinstance(exc, aio.AioRpcError) and exc.code() is grpc.StatusCode.UNAVAILABLE
            and (exc.details() or "").startswith(NOT_LEADER))


def _describe(exc: Exception) -> tuple[str, bool]:
    """A one-line reason and whether retrying soon is pointless."""
    if isinstance(exc, aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}", exc.code() in _FATAL
    return str(exc), isinstance(exc, InputError)


def _read(path: Path | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(flag, f"cannot read {path}: {exc.strerror or exc}") from None


__all__ = ["Agent", "AgentConfig", "AgentStats", "ClientTls", "SampleSource", "read_token"]
