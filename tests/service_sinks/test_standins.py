"""The stand-ins refuse what the real peers refuse, on the paths the sinks use (eviction, pod field selectors),
so that a sink passing against them passes against kube-apiserver."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from .conftest import NODES, RestartableApiServer

EVICTION = "/api/v1/namespaces/team-a/pods/exec-1/eviction"


def eviction(name: str = "exec-1", **overrides: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "team-a"},
            **overrides}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (eviction(), "application/json", 201, ""),
        (eviction(), "", 201, ""),
        (eviction(), "application/merge-patch+json", 415, "UnsupportedMediaType"),
        (eviction("exec-2"), "application/json", 400, "BadRequest"),
        (eviction(kind="Pod"), "application/json", 400, "BadRequest"),
        (eviction(metadata={"name": "exec-1", "namespace": "team-b"}), "application/json", 400, "BadRequest"),
    ],
)
def test_the_stand_in_evicts_as_kube_apiserver_does(
    kube: RestartableApiServer, body: dict[str, Any], content_type: str, status: int, reason: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(f"{kube.url}{EVICTION}", content=orjson.dumps(body), headers=headers)
    assert response.status_code == status
    if status == 201:
        assert response.json()["status"] == "Success"
        assert "team-a/exec-1" not in kube.server.objects("pods")
    else:
        assert response.json()["reason"] == reason
        assert "team-a/exec-1" in kube.server.objects("pods")


def test_the_stand_in_answers_a_missing_pod_404_and_a_budget_429(kube: RestartableApiServer) -> None:
    missing = httpx.post(f"{kube.url}/api/v1/namespaces/team-a/pods/nope/eviction", json=eviction("nope"))
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    kube.server.disruption_blocked.add("team-a/exec-1")
    blocked = httpx.post(f"{kube.url}{EVICTION}", json=eviction())
    assert blocked.status_code == 429 and blocked.json()["details"]["causes"][0]["reason"] == "DisruptionBudget"


def test_the_stand_in_lists_pods_by_node_and_refuses_unknown_fields(kube: RestartableApiServer) -> None:
    on_node = httpx.get(f"{kube.url}/api/v1/pods", params={"fieldSelector": f"spec.nodeName={NODES[0]}"})
    assert sorted(p["metadata"]["uid"] for p in on_node.json()["items"]) == ["uid-team-a-exec-1", "uid-team-a-exec-2"]
    elsewhere = httpx.get(f"{kube.url}/api/v1/pods", params={"fieldSelector": f"spec.nodeName!={NODES[0]}"})
    assert [p["metadata"]["uid"] for p in elsewhere.json()["items"]] == ["uid-team-b-exec-1"]
    unknown = httpx.get(f"{kube.url}/api/v1/pods", params={"fieldSelector": "spec.host=x"})
    assert unknown.status_code == 400 and "field label not supported" in unknown.json()["message"]
