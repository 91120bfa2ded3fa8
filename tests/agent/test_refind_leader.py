"""After a leader change an agent streams to the new leader within a few seconds, not after up to 30 s of backoff:
followers refuse its stream ``UNAVAILABLE`` with details beginning ``NOT_LEADER``, which the agent retries after a
short random delay, for a bounded time; a broker that is down keeps the exponential backoff.

The replicas are real ``AgentHub``s refusing as a follower replica does (``hub.refusing``, set by
``broker.service.control.service.build``); in front of them a TCP balancer stands for the Kubernetes Service (what
kube-proxy does: each new connection goes to one endpoint picked at random).

``python -m tests.agent.test_refind_leader`` measures the time from a leader change until the new leader receives
the agent's first sample, with the shipped settings and with quick retries off (the backoff alone, as before).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from broker.service.agents import AgentHub
from plugins.node_agent.client import Agent, AgentConfig, _Looking
from plugins.node_agent.wire import NOT_LEADER
from tests.agent.conftest import TOKEN, Script

REFUSAL = f"{NOT_LEADER}: reconnect to reach it"
"""A follower's refusal, as ``broker.service.control.service.build`` words it."""


class Service:
    """A TCP balancer standing for a Kubernetes Service: each new connection goes to a backend picked at random
    (seeded, so a test's sequence of picks is the same on every run); when the backend refuses the connection, the
    client's connection is closed. ``connections`` records when each arrived and where it went."""

    def __init__(self, backends: list[int], seed: int) -> None:
        self.backends = backends
        self.connections: list[tuple[float, int]] = []
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def __aenter__(self) -> Service:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()  # its reader sees the end too: every pipe finishes
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            port = self._random.choice(self.backends)
            self.connections.append((time.monotonic(), port))
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            self._writers.add(upstream_writer)
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                self._writers.discard(upstream_writer)
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


class Replicas:
    """``count`` broker replicas' agent ports; the one ``leader`` names takes samples, the others refuse as
    followers do. ``received[i]``: when replica ``i`` received each sample (monotonic)."""

    def __init__(self, count: int) -> None:
        self.leader: int | None = 0
        self.received: list[list[float]] = [[] for _ in range(count)]
        self.hubs = [self._hub(i) for i in range(count)]

    def _hub(self, i: int, port: int = 0) -> AgentHub:
        async def on_sample(sample: Any, received_at_s: float) -> None:
            self.received[i].append(time.monotonic())

        hub = AgentHub(TOKEN, port=port, on_sample=on_sample)
        hub.refusing = lambda: None if self.leader == i else REFUSAL
        return hub

    async def start(self) -> list[int]:
        return [await hub.start() for hub in self.hubs]

    async def crash(self, i: int) -> None:
        """Replica ``i`` is gone: connections to it are refused, its stream ends."""
        await self.hubs[i].stop(grace_s=0)

    async def restart(self, i: int) -> None:
        """Replica ``i`` is back on its port (as a follower unless it is ``leader``)."""
        self.hubs[i] = self._hub(i, self.hubs[i].port)
        await self.hubs[i].start()

    async def stop(self) -> None:
        for hub in self.hubs:
            await hub.stop(grace_s=0)

    def first_sample_after(self, i: int, moment: float) -> float | None:
        return next((at for at in self.received[i] if at > moment), None)


async def until(condition: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


@dataclass
class Failovers:
    """Per leader change, seconds from the new leader's first moment until it accepted the agent's stream
    (``accepted_s``) and until it received the first sample on it (``took_s``: one interval later, since a stream's
    first sample measures one interval)."""

    accepted_s: list[float] = field(default_factory=list)
    took_s: list[float] = field(default_factory=list)
    connects: int = 0
    not_leader: int = 0

    def summary(self) -> str:
        return (f"n={len(self.took_s)} stream accepted after {_spread(self.accepted_s)}; first sample after "
                f"{_spread(self.took_s)}; {self.connects} connects, {self.not_leader} refusals")


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


async def failovers(token_file: Path, *, count: int, replicas: int, crash: bool, gap_s: float, seed: int,
                    timeout_s: float = 60.0, **settings: Any) -> Failovers:
    """``count`` leader changes, each to the next replica: the leader resigns (or, with ``crash``, dies), no replica
    leads for ``gap_s`` (the election: up to the lease's TTL after a crash), then the next one leads. Each change is
    timed from the moment the new leader leads until it receives the agent's first sample."""
    fleet = Replicas(replicas)
    ports = await fleet.start()
    result = Failovers()
    try:
        async with Service(ports, seed) as service:
            agent = Agent(AgentConfig(f"127.0.0.1:{service.port}", token_file, **settings), Script())
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            await until(lambda: fleet.received[0], timeout_s)
            current = 0
            for _ in range(count):
                following = (current + 1) % replicas
                fleet.leader = None
                if crash:
                    await fleet.crash(current)
                await asyncio.sleep(gap_s)
                leading_at = time.monotonic()
                fleet.leader = following
                await until(lambda: fleet.hubs[following].counters.streams_open, timeout_s)  # noqa: B023
                result.accepted_s.append(time.monotonic() - leading_at)
                await until(lambda: fleet.first_sample_after(following, leading_at), timeout_s)  # noqa: B023
                result.took_s.append((fleet.first_sample_after(following, leading_at) or 0.0) - leading_at)
                if crash:
                    await fleet.restart(current)
                current = following
            stop.set()
            await running
            result.connects, result.not_leader = agent.stats.connects, agent.stats.not_leader
    finally:
        await fleet.stop()
    return result


# --- the tests -------------------------------------------------------------------------------------------------------

FAST = {"interval_s": 1.0, "backoff_initial_s": 0.5, "backoff_max_s": 30.0}
"""The shipped sampling and backoff settings (``AgentConfig``'s defaults), written out."""


# Two replicas: each attempt reaches the leader with probability 1/2, so a bound of 10 s (about 16 attempts of
# 0.2-1 s) fails once in ~60,000 changes; with the backoff alone, 0.5 + 1 + 2 + 4 s go by in four misses.
# ``main`` measures three replicas, as deploy/kubernetes/broker.yaml runs them.

def test_after_a_handover_the_agent_streams_to_the_new_leader_within_seconds(token_file: Path) -> None:
    # A rolling update's handover: the leader resigns, another leads at its next campaign.
    result = asyncio.run(failovers(token_file, count=4, replicas=2, crash=False, gap_s=0.5, seed=1, **FAST))
    print(f"handover: {result.summary()}")
    assert max(result.accepted_s) < 10.0 and max(result.took_s) < 11.0
    assert result.not_leader >= 4  # the old leader refused the stream it held, at least once per change


def test_after_the_leader_dies_the_agent_streams_to_the_new_leader_within_seconds(token_file: Path) -> None:
    # The dead replica stays behind the Service for a while (connections to it are refused): those failures
    # back off, but each follower's refusal restarts the backoff, so the agent keeps looking.
    result = asyncio.run(failovers(token_file, count=2, replicas=2, crash=True, gap_s=3.0, seed=2, **FAST))
    print(f"crash: {result.summary()}")
    assert max(result.accepted_s) < 10.0 and max(result.took_s) < 11.0


def test_followers_get_quick_retries_for_the_window_then_the_backoff(token_file: Path) -> None:
    async def scenario() -> list[float]:
        fleet = Replicas(2)
        fleet.leader = None  # an election that does not end
        ports = await fleet.start()
        try:
            async with Service(ports, seed=3) as service:
                config = AgentConfig(f"127.0.0.1:{service.port}", token_file, interval_s=0.2,
                                     backoff_initial_s=0.2, backoff_max_s=0.8, refind_delay_s=(0.02, 0.05),
                                     refind_window_s=1.0)
                stop = asyncio.Event()
                running = asyncio.create_task(Agent(config, Script()).run(stop))
                await asyncio.sleep(4.0)
                stop.set()
                await running
                return [at for at, _ in service.connections]
        finally:
            await fleet.stop()

    arrivals = asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    window = [g for a, g in zip(arrivals, gaps, strict=False) if a - arrivals[0] < 0.9]
    after = [g for a, g in zip(arrivals, gaps, strict=False) if a - arrivals[0] > 1.2]
    # 0.02-0.05 s apart plus the refusal's round trip; the median, because a loaded machine (CI shares its two
    # cores) can stretch any single gap past the backoff's scale.
    assert len(window) >= 10 and statistics.median(window) < 0.15
    assert after and min(after) >= 0.18 and after[-1] >= 0.75  # the backoff: 0.2, 0.4, 0.8, 0.8 ...


def test_a_broker_that_is_down_keeps_the_exponential_backoff(token_file: Path) -> None:
    async def scenario() -> Agent:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()[1]  # nobody listens there once the probe is closed
        async with Service([dead], seed=4) as service:
            config = AgentConfig(f"127.0.0.1:{service.port}", token_file, interval_s=0.2, backoff_initial_s=0.1,
                                 backoff_max_s=0.8, refind_delay_s=(0.02, 0.05))
            agent = Agent(config, Script())
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            await asyncio.sleep(3.0)
            stop.set()
            await running
            return agent

    stats = asyncio.run(scenario()).stats
    assert stats.not_leader == 0 and stats.last_error is not None
    assert stats.last_error.startswith(grpc.StatusCode.UNAVAILABLE.name)
    assert 4 <= stats.connects <= 8  # after 0.1, 0.2, 0.4, 0.8, 0.8 ... s in 3 s; quick retries would make ~60


def test_a_refusal_is_seen_at_once_not_at_the_next_sample(token_file: Path) -> None:
    async def scenario() -> tuple[float, int]:
        fleet = Replicas(1)
        fleet.leader = None
        ports = await fleet.start()
        try:
            async with Service(ports, seed=5) as service:
                config = AgentConfig(f"127.0.0.1:{service.port}", token_file, interval_s=30.0,
                                     refind_delay_s=(0.05, 0.1))
                agent = Agent(config, Script())
                stop = asyncio.Event()
                running = asyncio.create_task(agent.run(stop))
                started = time.monotonic()
                await until(lambda: agent.stats.not_leader >= 5, 10)
                stop.set()
                await running
                return time.monotonic() - started, agent.stats.sent
        finally:
            await fleet.stop()

    took_s, sent = asyncio.run(scenario())
    assert took_s < 2.0 and sent == 0  # five refusals long before the first sample (30 s) was due


def test_a_search_ends_with_an_ack_or_its_window_and_a_new_one_starts_after_a_silence() -> None:
    looking = _Looking(window_s=60.0)
    assert not looking.quick(0.0)  # no refusal yet: a failure is an outage, the backoff applies
    assert looking.refused(10.0) and looking.quick(10.0)
    assert not looking.refused(40.0) and looking.quick(69.9)  # connection failures meanwhile are quick too
    assert not looking.refused(95.0) and not looking.quick(95.0)  # refusals go on past the window: backoff
    assert looking.refused(160.0) and looking.quick(160.0)  # none for more than the window: a new search
    looking.found()
    assert not looking.quick(161.0)
    assert looking.refused(300.0)


# --- the measurement -------------------------------------------------------------------------------------------------

def main() -> None:
    """Time leader changes with the shipped settings and with quick retries off (the backoff alone)."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as directory:
        token_file = Path(directory) / "token"
        token_file.write_text(TOKEN)
        for label, crash, gap_s in (("handover, 0.5 s without a leader", False, 0.5),
                                    ("handover, 2 s without a leader (one renew_s)", False, 2.0),
                                    ("leader dies, 5 s without a leader", True, 5.0)):
            for mode, extra in (("quick retries", {}), ("backoff only", {"refind_window_s": 0.0})):
                result = asyncio.run(failovers(token_file, count=count, replicas=3, crash=crash, gap_s=gap_s,
                                               seed=11, timeout_s=600.0, **FAST, **extra))
                print(f"{label:48} {mode:14} {result.summary()}", flush=True)


if __name__ == "__main__":
    main()
