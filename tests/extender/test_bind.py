"""Bind: off without a binder (an ``Error`` saying so); with one, the binder binds and the ledger records
it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from broker.errors import TemporaryPeerError
from broker.service.extender import BIND_NOT_CONFIGURED, BindingArgs, Extender, ExtenderConfig, Verb

from .builders import filter_body, node, plan, pod, team
from .conftest import Clock, RecordingBinder


def bind_body(name: str = "p0", node_name: str = "n1", uid: str | None = None) -> bytes:
    return orjson.dumps(
        {"PodName": name, "PodNamespace": "team-a", "PodUID": uid or f"uid-{name}", "Node": node_name}
    )


def bind(extender: Extender, body: bytes) -> tuple[int, dict[str, Any]]:
    reply = asyncio.run(extender.bind(body))
    answer: dict[str, Any] = orjson.loads(reply.body)
    return reply.status, answer


def admitted(extender: Extender, name: str) -> bool:
    reply = extender.handle(Verb.FILTER, filter_body(pod(name).batch(2000), ["n1"]))
    names: list[str] = orjson.loads(reply.body)["NodeNames"]
    return names == ["n1"]


@pytest.fixture
def binder() -> RecordingBinder:
    return RecordingBinder()


@pytest.fixture
def binding(clock: Clock, binder: RecordingBinder) -> Extender:
    """A binding extender; team-a has room for exactly one 2-core pod."""
    extender = Extender(ExtenderConfig(assume_ttl_s=30, max_plan_age_s=3600), clock=clock, binder=binder)
    extender.install(
        plan(
            nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a").quota(cpu="2", memory="100Gi")]
        )
    )
    return extender


def test_without_a_binder_bind_answers_that_it_is_not_configured(extender: Extender) -> None:
    assert bind(extender, bind_body()) == (200, {"Error": BIND_NOT_CONFIGURED})
    assert "remove bindVerb" in BIND_NOT_CONFIGURED


def test_the_binder_is_asked_to_bind_the_pod_to_the_node(binding: Extender, binder: RecordingBinder) -> None:
    assert bind(binding, bind_body("p0", "n1")) == (200, {"Error": ""})
    assert binder.calls == [BindingArgs("p0", "team-a", "uid-p0", "n1")]


def test_a_failing_binder_is_reported_in_error(clock: Clock) -> None:
    failing = RecordingBinder(TemporaryPeerError("kube-apiserver k8s-a", "connection refused"))
    extender = Extender(ExtenderConfig(), clock=clock, binder=failing)
    status, answer = bind(extender, bind_body("p0", "n1"))
    assert status == 200
    assert answer["Error"] == (
        "binding pod team-a/p0 to node n1 failed: kube-apiserver k8s-a: connection refused"
    )


def test_a_repeated_bind_to_the_same_node_does_not_call_the_binder_again(
    binding: Extender, binder: RecordingBinder
) -> None:
    bind(binding, bind_body("p0", "n1"))
    assert bind(binding, bind_body("p0", "n1")) == (200, {"Error": ""})
    assert len(binder.calls) == 1


def test_a_bind_of_a_bound_pod_to_another_node_is_refused(binding: Extender, binder: RecordingBinder) -> None:
    bind(binding, bind_body("p0", "n1"))
    assert bind(binding, bind_body("p0", "n2")) == (
        200,
        {"Error": "pod team-a/p0 is already bound to node n1"},
    )
    assert len(binder.calls) == 1


def test_a_bound_pod_keeps_counting_against_quota_past_the_assume_ttl(
    binding: Extender, clock: Clock
) -> None:
    assert admitted(binding, "p0")
    bind(binding, bind_body("p0", "n1"))
    clock.now += 31
    assert not admitted(binding, "p1")


def test_an_unbound_admitted_pod_stops_counting_after_the_assume_ttl(binding: Extender, clock: Clock) -> None:
    assert admitted(binding, "p0")
    clock.now += 31
    assert admitted(binding, "p1")


def test_a_plan_made_after_the_binding_settles_it(binding: Extender, clock: Clock) -> None:
    assert admitted(binding, "p0")
    bind(binding, bind_body("p0", "n1"))
    clock.now += 5
    binding.install(
        plan(
            nodes=[node("n1").places("team-a", "exec")],
            teams=[team("team-a").quota(cpu="2", memory="100Gi")],
            version=2,
            created_at_s=clock.now,
        )
    )
    assert admitted(binding, "p1")


def test_binding_a_pod_filtered_elsewhere_but_seen_here_charges_it(binding: Extender, clock: Clock) -> None:
    # Seen here through a filter that failed for quota; then another replica admitted it and it was bound.
    assert admitted(binding, "p0")
    assert not admitted(binding, "p1")
    bind(binding, bind_body("p1", "n1"))
    clock.now += 31
    assert not admitted(binding, "p2")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"PodName": "", "PodNamespace": "a", "Node": "n1"}', "PodName: must not be empty"),
        (b'{"PodName": "p", "PodNamespace": "a", "Node": null}', "Node: must not be empty"),
        (
            b'{"PodName": "p", "PodNamespace": 3, "Node": "n1"}',
            "PodNamespace: expected a string, got a number",
        ),
        (b"[]", "(body): expected a JSON object, got a list"),
    ],
    ids=["empty-name", "null-node", "number-namespace", "list"],
)
def test_a_malformed_bind_is_a_400_naming_the_field(binding: Extender, body: bytes, message: str) -> None:
    assert bind(binding, body) == (400, {"Error": message})


def test_lowercase_bind_keys_are_read_as_go_reads_them(binding: Extender, binder: RecordingBinder) -> None:
    body = b'{"podname": "p0", "podnamespace": "team-a", "poduid": "u", "node": "n1"}'
    assert bind(binding, body) == (200, {"Error": ""})
    assert binder.calls == [BindingArgs("p0", "team-a", "u", "n1")]


def test_handle_does_not_answer_bind(extender: Extender) -> None:
    with pytest.raises(ValueError, match=r"Extender\.bind"):
        extender.handle(Verb.BIND, bind_body())
