"""Fuzz: whatever a client sends to any endpoint, the answer is never a 5xx (and a 200 is valid JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.service.extender import Extender, ExtenderConfig, create_app

from .builders import node, plan, pod, preempt_body, team
from .conftest import Clock, RecordingBinder
from .live_server import live_server

VERBS = ["filter", "prioritize", "preempt", "bind"]
ENDPOINTS = [*VERBS, "healthz", "readyz", "metrics", "nope"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)

VALID_BODIES: dict[str, Any] = {
    "filter": {"Pod": pod("p").batch().obj(), "Nodes": None, "NodeNames": ["n1", "n2"]},
    "prioritize": {
        "Pod": pod("p").batch().obj(),
        "Nodes": {"metadata": {}, "items": [{"metadata": {"name": "n1"}}]},
        "NodeNames": None,
    },
    "preempt": orjson.loads(preempt_body(pod("p").batch(), {"n1": ["uid-x"]})),
    "bind": {"PodName": "p", "PodNamespace": "team-a", "PodUID": "uid-p", "Node": "n1"},
}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    extender = Extender(ExtenderConfig(), clock=Clock(), binder=RecordingBinder())
    extender.install(
        plan(nodes=[node("n1").places("team-a", "exec"), node("n2").stable().disk()], teams=[team("team-a")])
    )
    with live_server(create_app(extender, max_body_bytes=64 * 1024)) as url, httpx.Client(base_url=url) as c:
        yield c


def mutate(data: st.DataObject, value: Any) -> Any:
    """``value`` with one subtree (or the whole) replaced by arbitrary JSON."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: mutate(data, value[key])}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate(data, value[i]), *value[i + 1 :]]
    return data.draw(json_values)


def encode(body: Any) -> bytes:
    """JSON text of ``body``; the standard encoder, since generated integers may exceed 64 bits."""
    return json.dumps(body).encode()


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 200 and response.headers["content-type"] == "application/json":
        orjson.loads(response.content)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from(VERBS), data=st.data())
def test_mutated_valid_bodies_never_get_a_5xx(client: httpx.Client, verb: str, data: st.DataObject) -> None:
    body = mutate(data, VALID_BODIES[verb])
    check(client.post(f"/{verb}", content=encode(body)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=st.binary(max_size=300),
    method=st.sampled_from(["POST", "GET", "PUT"]),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-8"]),
)
def test_arbitrary_bytes_never_get_a_5xx(
    client: httpx.Client, endpoint: str, body: bytes, method: str, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.request(method, f"/{endpoint}", content=body, headers=headers)
    assert response.status_code < 500, response.text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from(VERBS), body=json_values)
def test_arbitrary_json_never_gets_a_5xx(client: httpx.Client, verb: str, body: Any) -> None:
    check(client.post(f"/{verb}", content=encode(body)))
