"""Replays of the upstream extender fixtures and of requests a real kube-scheduler (v1.28) sent, over HTTP.

The answers must decode as the scheduler's Go types decode them: exactly the ``ExtenderFilterResult`` keys,
names only from the request, a bare ``HostPriority`` array, ``NodeNameToMetaVictims`` with UIDs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from broker.service.extender import BIND_NOT_CONFIGURED, BindingArgs, Extender, ExtenderConfig, create_app

from .builders import node, plan, team
from .conftest import SAMPLES, Clock, RecordingBinder
from .live_server import live_server

if not SAMPLES.is_dir():
    pytest.skip(f"the kube-scheduler contract samples are not at {SAMPLES}", allow_module_level=True)

FILTER_RESULT_KEYS = set(orjson.loads((SAMPLES / "extender-filter-result.json").read_bytes()))
PREEMPT_RESULT_KEYS = set(orjson.loads((SAMPLES / "extender-preempt-result.json").read_bytes()))
HOST_PRIORITY_KEYS = set(orjson.loads((SAMPLES / "extender-prioritize-result.json").read_bytes())[0])
CAPTURED = SAMPLES / "captured"


def sample(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


@pytest.fixture(scope="module")
def extender() -> Extender:
    """An extender whose plan covers the captured clusters' nodes for the captured pods' namespace."""
    names = [f"fake-node-{i}" for i in (1, 2, 3)] + [f"sim-node-{i:04d}" for i in range(503)]
    ext = Extender(ExtenderConfig(), clock=Clock())
    ext.install(
        plan(
            nodes=[node(n).stable().disk().places("team-d", "exec", 8) for n in names],
            teams=[team("team-d").namespaces("default")],
        )
    )
    return ext


@pytest.fixture(scope="module")
def client(extender: Extender) -> Iterator[httpx.Client]:
    with live_server(create_app(extender)) as url, httpx.Client(base_url=url) as c:
        yield c


def as_offline(pod: dict[str, Any], cpu: str = "1000") -> dict[str, Any]:
    """The captured pod, asking for the broker's managed resources as an offline pod would."""
    out = copy.deepcopy(pod)
    for container in out["spec"]["containers"]:
        container["resources"].setdefault("requests", {})["broker.elastic.io/batch-cpu"] = cpu
    return out


def post(client: httpx.Client, verb: str, body: Any) -> Any:
    response = client.post(
        f"/{verb}", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return orjson.loads(response.content)


def test_upstream_filter_args_with_both_lists_are_answered_in_both_forms(client: httpx.Client) -> None:
    args = sample(SAMPLES / "extender-filter-args.json")
    result = post(client, "filter", args)
    assert set(result) == FILTER_RESULT_KEYS
    assert result["Nodes"] == args["Nodes"]
    assert result["NodeNames"] == args["NodeNames"]


def test_constructed_node_cache_filter_answers_names_only(client: httpx.Client) -> None:
    result = post(client, "filter", sample(SAMPLES / "extender-filter-args-nodecache.constructed.json"))
    assert set(result) == FILTER_RESULT_KEYS
    assert result["Nodes"] is None and result["NodeNames"] == ["node-1", "node-2", "node-3"]


@pytest.mark.parametrize(
    "name",
    ["filter-request-nodecachecapable-true.json", "filter-request-nodecachecapable-true-503nodes.json"],
)
def test_captured_node_cache_filters_of_online_pods_pass_every_name(client: httpx.Client, name: str) -> None:
    args = sample(CAPTURED / name)
    assert args["Nodes"] is None
    result = post(client, "filter", args)
    assert result["NodeNames"] == args["NodeNames"] and result["Nodes"] is None


def test_captured_full_node_filter_echoes_the_node_objects_the_scheduler_accepted(
    client: httpx.Client,
) -> None:
    result = post(client, "filter", sample(CAPTURED / "filter-request-nodecachecapable-false.json"))
    accepted = sample(CAPTURED / "filter-response-nodecachecapable-false.json")
    assert result["Nodes"] == accepted["Nodes"]
    assert result["NodeNames"] is None


def test_captured_503_node_full_filter_of_an_offline_pod_returns_its_node(client: httpx.Client) -> None:
    args = sample(CAPTURED / "filter-request-nodecachecapable-false-503nodes.json")
    args["Pod"] = as_offline(args["Pod"])
    result = post(client, "filter", args)
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["fake-node-1"]


def test_captured_503_node_filter_of_an_offline_pod_keeps_only_sent_names(client: httpx.Client) -> None:
    args = sample(CAPTURED / "filter-request-nodecachecapable-true-503nodes.json")
    args["Pod"] = as_offline(args["Pod"])
    args["NodeNames"] = [*args["NodeNames"], "not-in-plan"]
    result = post(client, "filter", args)
    assert result["NodeNames"] == args["NodeNames"][:-1]
    assert result["FailedAndUnresolvableNodes"] == {"not-in-plan": "not in plan v1"}


def test_captured_offline_pod_in_an_unbound_namespace_is_refused_on_every_node(client: httpx.Client) -> None:
    args = sample(CAPTURED / "filter-request-nodecachecapable-true.json")
    args["Pod"] = as_offline(args["Pod"])
    args["Pod"]["metadata"]["namespace"] = "nobody"
    result = post(client, "filter", args)
    assert result["NodeNames"] == []
    assert set(result["FailedAndUnresolvableNodes"]) == set(args["NodeNames"])


def test_lowercase_keys_are_read_as_go_reads_them(client: httpx.Client) -> None:
    args = sample(SAMPLES / "extender-filter-args-nodecache.constructed.json")
    lowered = {"pod": as_offline(args["Pod"]), "nodes": None, "nodenames": ["fake-node-1", "x"]}
    result = post(client, "filter", lowered)
    assert result["NodeNames"] == ["fake-node-1"]


def test_null_lists_mean_no_candidates(client: httpx.Client) -> None:
    result = post(client, "filter", {"Pod": {"metadata": {"name": "p"}}, "Nodes": None, "NodeNames": None})
    assert result == {
        "Nodes": None,
        "NodeNames": None,
        "FailedNodes": {},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }


@pytest.mark.parametrize(
    "name",
    ["prioritize-request-nodecachecapable-true.json", "prioritize-request-nodecachecapable-false.json"],
)
def test_captured_prioritize_requests_score_every_candidate_within_0_to_10(
    client: httpx.Client, name: str
) -> None:
    args = sample(CAPTURED / name)
    for pod in (args["Pod"], as_offline(args["Pod"])):
        scores = post(client, "prioritize", {**args, "Pod": pod})
        assert all(set(s) == HOST_PRIORITY_KEYS for s in scores)
        candidates = args["NodeNames"] or [n["metadata"]["name"] for n in args["Nodes"]["items"]]
        assert [s["Host"] for s in scores] == candidates
        assert all(0 <= s["Score"] <= 10 for s in scores)


def test_captured_full_victim_preemption_of_an_online_pod_is_left_as_proposed(client: httpx.Client) -> None:
    result = post(client, "preempt", sample(CAPTURED / "preempt-request-nodecachecapable-false.json"))
    assert result == sample(CAPTURED / "preempt-response.json")


def test_captured_meta_victim_preemption_of_an_online_pod_is_left_as_proposed(client: httpx.Client) -> None:
    args = sample(CAPTURED / "preempt-request-nodecachecapable-true.json")
    result = post(client, "preempt", args)
    assert result == {"NodeNameToMetaVictims": args["NodeNameToMetaVictims"]}


def test_captured_preemption_by_an_offline_pod_of_online_victims_finds_no_candidate(
    client: httpx.Client,
) -> None:
    args = sample(CAPTURED / "preempt-request-nodecachecapable-false.json")
    args["Pod"] = as_offline(args["Pod"])
    assert post(client, "preempt", args) == {"NodeNameToMetaVictims": {}}


def test_upstream_preempt_sample_answers_meta_victims(client: httpx.Client) -> None:
    result = post(client, "preempt", sample(SAMPLES / "extender-preempt-args.json"))
    assert set(result) == PREEMPT_RESULT_KEYS
    assert result == sample(SAMPLES / "extender-preempt-result.json")


def test_upstream_bind_sample_without_a_binder_answers_a_binding_result_error(client: httpx.Client) -> None:
    result = post(client, "bind", sample(SAMPLES / "extender-bind-args.json"))
    assert set(result) == set(sample(SAMPLES / "extender-bind-result.json"))
    assert result == {"Error": BIND_NOT_CONFIGURED}


def test_upstream_bind_sample_with_a_binder_binds_the_named_pod(clock: Clock) -> None:
    binder = RecordingBinder()
    with live_server(create_app(Extender(ExtenderConfig(), clock=clock, binder=binder))) as url:
        response = httpx.post(f"{url}/bind", content=(SAMPLES / "extender-bind-args.json").read_bytes())
    assert response.status_code == 200 and response.json() == {"Error": ""}
    assert binder.calls == [BindingArgs("mypodname", "mypodnamespace", "mypoduid", "mynode")]
