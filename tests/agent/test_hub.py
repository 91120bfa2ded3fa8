"""The agents' gRPC stream end to end on loopback: a real AgentHub and real agents (or raw gRPC clients)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc import aio

from broker.model import NodePlan, Resources, Sink
from broker.service.agents import AgentHub, ServerTls, evictions_of, shrink_for
from broker.service.sinks.base import Eviction
from plugins.node_agent.client import Agent, AgentConfig, ClientTls
from plugins.node_agent.sampler import Sampler
from plugins.node_agent.wire import REPORT_PATH, NodeSample, decode_ack, encode
from tests.agent.conftest import TOKEN, Pki, Script, sample


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


def config(port: int, token_file: Path, tls: ClientTls | None = None, **kwargs: float) -> AgentConfig:
    host = "localhost" if tls else "127.0.0.1"
    return AgentConfig(f"{host}:{port}", token_file, interval_s=kwargs.pop("interval_s", 0.05), tls=tls,
                       backoff_initial_s=0.05, backoff_max_s=kwargs.pop("backoff_max_s", 0.2), **kwargs)


async def raw_stream(port: int, payloads: list[bytes], token: str | None = TOKEN) -> tuple[grpc.StatusCode, str, int]:
    """Send ``payloads`` on one stream as a bare gRPC client; the final status, its details and the acks seen."""
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(REPORT_PATH)(metadata=metadata)
        acks = 0
        try:
            for payload in payloads:
                await call.write(payload)
                decode_ack(await call.read())
                acks += 1
            await call.done_writing()
            while await call.read() is not aio.EOF:
                acks += 1
        except (aio.AioRpcError, asyncio.InvalidStateError):
            pass
        return await call.code(), await call.details() or "", acks


def test_an_agents_samples_reach_the_callback_latest_and_lag(token_file: Path) -> None:
    async def scenario() -> None:
        seen: list[NodeSample] = []

        async def on_sample(item: NodeSample, received_at_s: float) -> None:
            seen.append(item)

        hub = AgentHub(TOKEN, on_sample=on_sample)
        async with hub:
            port = hub.port
            stop = asyncio.Event()
            agent = Agent(config(port, token_file), Script())
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: agent.stats.acked >= 3)
            stop.set()
            await task
        assert [s.seq for s in seen][:3] == [0, 1, 2]
        assert hub.latest()["node-a"] == seen[-1]
        lag = hub.lag()["node-a"]
        assert lag.seq == seen[-1].seq and 0 <= lag.receive_delay_s < 1 and lag.age_s < 5
        assert hub.counters.samples == len(seen) and hub.counters.streams_open == 0

    run(scenario)


def test_a_spike_reaches_the_fast_path_well_under_a_second(token_file: Path) -> None:
    async def scenario() -> None:
        reached: dict[int, float] = {}
        decisions = []

        async def on_sample(item: NodeSample, received_at_s: float) -> None:
            reached[item.seq] = time.monotonic()
            node = NodePlan(node=item.node, site="s", cluster="c", yarn=Resources.exact(4_000, 8_192))
            decision = shrink_for(item, node)
            if decision.over:
                decisions.append((decision, evictions_of(item.node, decision)))

        hub = AgentHub(TOKEN, on_sample=on_sample)
        async with hub:
            port = hub.port
            script = Script(spike_at=3)
            stop = asyncio.Event()
            task = asyncio.create_task(Agent(config(port, token_file, interval_s=0.2), script).run(stop))
            await until(lambda: 3 in reached)
            stop.set()
            await task
        assert reached[3] - script.produced_at[3] < 0.25
        decision, evictions = decisions[0]
        # 16 cores: safe 13,600m - 15,000m online: nothing left; the lone container (an AM) must go.
        assert decision.yarn.cpu_milli == 0
        assert evictions == [Eviction("node-a", Sink.YARN, "container_1_0001_01_000001")]

    run(scenario)


def test_the_real_sampler_streams_this_machines_figures(token_file: Path) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN)
        async with hub:
            port = hub.port
            stop = asyncio.Event()
            agent = Agent(config(port, token_file, interval_s=0.1), Sampler("this-node"))
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: "this-node" in hub.latest())
            stop.set()
            await task
        latest = hub.latest()["this-node"]
        assert latest.capacity_cpu_milli == (os.cpu_count() or 0) * 1000
        assert 0 < latest.online_memory_mib < latest.capacity_memory_mib

    run(scenario)


@pytest.mark.parametrize("token", [None, "wrong-token", ""], ids=["missing", "wrong", "empty"])
def test_a_stream_without_the_right_token_is_unauthenticated(token: str | None) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN)
        async with hub:
            port = hub.port
            code, details, acks = await raw_stream(port, [encode(sample())], token=token)
        assert (code, acks) == (grpc.StatusCode.UNAUTHENTICATED, 0)
        assert "token" in details
        assert hub.latest() == {} and hub.counters.unauthenticated == 1

    run(scenario)


def test_an_agent_with_a_wrong_token_keeps_retrying_and_reports_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN)
        async with hub:
            port = hub.port
            wrong = tmp_path / "wrong"
            wrong.write_text("nope")
            stop = asyncio.Event()
            agent = Agent(config(port, wrong), Script())
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: agent.stats.connects >= 2)
            stop.set()
            await task
        assert agent.stats.last_error is not None and agent.stats.last_error.startswith("UNAUTHENTICATED")
        assert hub.latest() == {}

    run(scenario)


BAD_PAYLOADS = {
    "negative-cpu": (encode(sample()).replace(b'"cpu_milli":500', b'"cpu_milli":-5'), "offline[0].cpu_milli"),
    "string-number": (encode(sample()).replace(b'"seq":0', b'"seq":"0"'), "seq"),
    "bad-node-name": (encode(sample()).replace(b'"node-a"', b'"node a"'), "node"),
    "unknown-sink": (encode(sample()).replace(b'"yarn"', b'"mesos"'), "offline[0].sink"),
    "extra-field": (encode(sample())[:-1] + b',"extra":1}', "extra"),
    "not-json": (b"\x00\xffnot json", "Invalid JSON"),
    "too-many-containers": (encode(sample(offline=1)).replace(
        b'"offline":[', b'"offline":[' + b'{},' * 10_001), "offline"),
}


@pytest.mark.parametrize(("payload", "field"), BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_a_bad_payload_is_invalid_argument_naming_the_field_and_the_hub_serves_on(payload: bytes, field: str) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN)
        async with hub:
            port = hub.port
            code, details, acks = await raw_stream(port, [encode(sample(seq=0)), payload])
            good = await raw_stream(port, [encode(sample(seq=7))])
        assert (code, acks) == (grpc.StatusCode.INVALID_ARGUMENT, 1)
        assert details.startswith(field) or field in details
        assert good == (grpc.StatusCode.OK, "", 1)
        assert hub.latest()["node-a"].seq == 7

    run(scenario)


def test_a_stream_that_changes_node_is_refused() -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN)
        async with hub:
            port = hub.port
            code, details, acks = await raw_stream(port, [encode(sample("node-a")), encode(sample("node-b"))])
        assert (code, acks) == (grpc.StatusCode.INVALID_ARGUMENT, 1)
        assert details.startswith("node:")

    run(scenario)


def test_a_message_above_the_size_limit_is_refused() -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN, max_message_bytes=2_048)
        async with hub:
            port = hub.port
            code, _, acks = await raw_stream(port, [encode(sample(offline=50))])
            good = await raw_stream(port, [encode(sample(offline=1))])
        assert (code, acks) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 0)
        assert good[0] == grpc.StatusCode.OK

    run(scenario)


def test_a_failing_callback_does_not_end_the_stream(token_file: Path) -> None:
    async def scenario() -> None:
        async def on_sample(item: NodeSample, received_at_s: float) -> None:
            raise RuntimeError("the control loop tripped")

        hub = AgentHub(TOKEN, on_sample=on_sample)
        async with hub:
            port = hub.port
            code, _, acks = await raw_stream(port, [encode(sample(seq=i)) for i in range(3)])
        assert (code, acks) == (grpc.StatusCode.OK, 3)
        assert hub.counters.callback_errors == 3

    run(scenario)


def test_the_agent_reconnects_after_the_hub_restarts(token_file: Path) -> None:
    async def scenario() -> None:
        first = AgentHub(TOKEN)
        port = await first.start()
        script = Script()
        stop = asyncio.Event()
        agent = Agent(config(port, token_file), script)
        task = asyncio.create_task(agent.run(stop))
        await until(lambda: agent.stats.acked >= 2)
        await first.stop(grace_s=0)
        await asyncio.sleep(0.3)  # the broker is down for a while: the agent backs off and retries
        second = AgentHub(TOKEN, port=port)
        await second.start()
        await until(lambda: "node-a" in second.latest())
        stop.set()
        await task
        await second.stop()
        assert agent.stats.connects >= 2 and script.primes == agent.stats.connects
        assert second.latest()["node-a"].seq > first.latest()["node-a"].seq

    run(scenario)


def test_an_agent_drops_a_stream_whose_acks_stop(token_file: Path) -> None:
    async def scenario() -> None:
        hang = asyncio.Event()

        async def on_sample(item: NodeSample, received_at_s: float) -> None:
            await hang.wait()  # a broker that stopped answering

        hub = AgentHub(TOKEN, on_sample=on_sample)
        async with hub:
            port = hub.port
            stop = asyncio.Event()
            agent = Agent(config(port, token_file, ack_timeout_s=0.3), Script())
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: agent.stats.connects >= 2)
            stop.set()
            hang.set()
            await task
        assert agent.stats.last_error is not None and "no ack" in agent.stats.last_error

    run(scenario)


def test_mutual_tls_admits_a_client_certificate_from_the_ca(token_file: Path, pki: Pki) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN, tls=ServerTls(pki.server_cert, pki.server_key, pki.ca))
        async with hub:
            port = hub.port
            stop = asyncio.Event()
            agent = Agent(config(port, token_file, ClientTls(pki.ca, pki.client_cert, pki.client_key)), Script())
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: agent.stats.acked >= 1)
            stop.set()
            await task
        assert "node-a" in hub.latest()

    run(scenario)


@pytest.mark.parametrize("who", ["no-certificate", "stranger"])
def test_mutual_tls_refuses_an_agent_without_a_certificate_from_the_ca(token_file: Path, pki: Pki, who: str) -> None:
    async def scenario() -> None:
        hub = AgentHub(TOKEN, tls=ServerTls(pki.server_cert, pki.server_key, pki.ca))
        async with hub:
            port = hub.port
            stranger = ClientTls(pki.ca, pki.stranger_cert, pki.stranger_key)
            tls = ClientTls(pki.ca) if who == "no-certificate" else stranger
            stop = asyncio.Event()
            agent = Agent(config(port, token_file, tls), Script())
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: len(agent.stats.errors) >= 2)
            stop.set()
            await task
        assert agent.stats.acked == 0 and hub.latest() == {}
        assert agent.stats.last_error is not None and agent.stats.last_error.startswith("UNAVAILABLE")

    run(scenario)


def test_a_hub_without_a_token_or_on_a_taken_port_is_an_input_error() -> None:
    from broker.errors import InputError

    async def scenario() -> None:
        with pytest.raises(InputError, match="token"):
            AgentHub("")
        first = AgentHub(TOKEN)
        port = await first.start()
        with pytest.raises(InputError, match="cannot listen"):
            await AgentHub(TOKEN, port=port).start()
        await first.stop()

    run(scenario)
