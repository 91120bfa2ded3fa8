"""Following ``ElasticQuotaPolicy`` objects and writing their ``Accepted`` condition (``plugins.kubernetes
.policy_watch``), through the official client, against the stand-in API server serving the project's CRD."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from broker.errors import PeerError, PermanentPeerError, TemporaryPeerError
from broker.model import Resources
from broker.quota import compute_runtime_quota
from plugins.kubernetes.policy_watch import Condition, PolicyWatch
from plugins.kubernetes.quota_status import GROUP, PLURAL, VERSION, QuotaStatusWriter
from tests.quota.builders import group, policy

from .conftest import Clock
from .kube_apiserver import Fault, StandInApiServer
from .wire import MERGE_PATCH

TEAM_A = group("team-a").min(cpu="40")
TEAM_B = group("team-b").min(cpu="20")
COLLECTION = f"/apis/{GROUP}/{VERSION}/{PLURAL}"


def policy_object(*groups: Any, name: str = "default") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticQuotaPolicy", "metadata": {"name": name},
            "spec": {"groups": [g.obj() for g in groups]}}


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time limit")
        time.sleep(0.02)


@pytest.fixture
def stand_in(server: StandInApiServer) -> Any:
    assert server.custom is not None
    return server.custom


@contextlib.contextmanager
def following(api: client.ApiClient, **options: Any) -> Iterator[PolicyWatch]:
    watch = PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test", watch_timeout_s=1, retry_s=0.05,
                        **options)
    watch.start()
    try:
        eventually(lambda: watch.synced)
        yield watch
    finally:
        watch.stop()


def accepted(status: bool = True, message: str = "in force as policy version 2", generation: int = 1) -> Condition:
    return Condition("Accepted", status, "Applied" if status else "Invalid", message, generation)


def conditions(stand_in: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stand_in.get("default").get("status", {}).get("conditions", [])
    return found


def test_the_watch_lists_the_objects_and_follows_edits_and_deletion(api: client.ApiClient, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    with following(api) as watch:
        first = watch.get("default")
        assert first is not None and first.generation == 1 and first.spec == {"groups": [TEAM_A.obj()]}
        stand_in.put(policy_object(TEAM_A, TEAM_B))
        eventually(lambda: (found := watch.get("default")) is not None and found.generation == 2)
        edited = watch.get("default")
        assert edited is not None and edited.spec == {"groups": [TEAM_A.obj(), TEAM_B.obj()]}
        assert edited.uid == first.uid and edited.resource_version != first.resource_version
        stand_in.delete("default")
        eventually(lambda: watch.get("default") is None)
        assert watch.error is None


def test_a_status_write_moves_the_resource_version_and_not_the_generation(
        api: client.ApiClient, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    with following(api) as watch:
        before = watch.get("default")
        assert before is not None
        assert watch.write_condition("default", accepted())
        eventually(lambda: (found := watch.get("default")) is not None
                   and found.resource_version != before.resource_version)
        after = watch.get("default")
        assert after is not None and after.generation == before.generation and after.spec == before.spec


def test_an_api_server_restart_with_compaction_is_answered_by_a_new_list(
        api: client.ApiClient, server: StandInApiServer, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    with following(api) as watch:
        server.restart(lambda _: stand_in.put(policy_object(TEAM_B)))  # unseen by any watch, history compacted
        eventually(lambda: (found := watch.get("default")) is not None and found.spec == {"groups": [TEAM_B.obj()]})
        assert watch.error is None


def test_a_failing_list_is_reported_and_retried_until_it_answers(
        api: client.ApiClient, server: StandInApiServer, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    server.inject(Fault("status", path=COLLECTION, method="GET", status=503, times=3))
    errors: list[PeerError] = []
    with following(api, on_error=errors.append) as watch:
        assert [type(e) for e in errors] == [TemporaryPeerError] * 3
        assert "503" in errors[0].message
        assert watch.get("default") is not None and watch.error is None


def test_the_condition_is_written_beside_the_quota_status_and_neither_clobbers_the_other(
        api: client.ApiClient, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A, TEAM_B))
    quota = policy(TEAM_A, TEAM_B)
    pool = Resources.of(cpu="100")
    custom = client.CustomObjectsApi(api)
    quota_writer = QuotaStatusWriter(custom, "kube-apiserver test")
    quota_writer.write("default", compute_runtime_quota(quota, pool, {"team-a": Resources.of(cpu="70")}), {})
    watch = PolicyWatch(custom, "kube-apiserver test")
    assert watch.write_condition("default", accepted())
    assert quota_writer.write("default", compute_runtime_quota(quota, pool, {"team-a": Resources.of(cpu="50")}), {})
    status = stand_in.get("default")["status"]
    assert [c["type"] for c in status["conditions"]] == ["Accepted"]
    assert next(g for g in status["groups"] if g["name"] == "team-a")["runtime"]["cpu"] == "50"


def test_an_unchanged_condition_is_not_written_again(api: client.ApiClient, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    watch = PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test")
    assert watch.write_condition("default", accepted())
    writes = stand_in.status_writes
    assert not watch.write_condition("default", accepted())
    assert stand_in.status_writes == writes


def test_the_transition_time_moves_only_when_the_condition_status_does(
        api: client.ApiClient, stand_in: Any, clock: Clock) -> None:
    stand_in.put(policy_object(TEAM_A))
    watch = PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test", clock=clock)
    watch.write_condition("default", accepted(message="in force as policy version 2"))
    clock.advance(60)
    watch.write_condition("default", accepted(message="in force as policy version 3", generation=2))
    (kept,) = conditions(stand_in)
    assert (kept["lastTransitionTime"], kept["message"], kept["observedGeneration"]) == (
        "2026-11-21T10:00:00Z", "in force as policy version 3", 2)
    clock.advance(60)
    watch.write_condition("default", accepted(False, "spec.groups[team-a].min.cpu: min 40 is above max 1", 3))
    (moved,) = conditions(stand_in)
    assert (moved["status"], moved["reason"], moved["lastTransitionTime"]) == ("False", "Invalid",
                                                                               "2026-11-21T10:02:00Z")


def test_conditions_of_other_types_are_kept(api: client.ApiClient, url: str, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    theirs = {"type": "Synced", "status": "True", "lastTransitionTime": "2026-11-20T00:00:00Z", "reason": "GitOps",
              "message": "synced by argo"}
    version = stand_in.get("default")["metadata"]["resourceVersion"]
    response = httpx.patch(f"{url}{COLLECTION}/default/status", headers={"Content-Type": MERGE_PATCH},
                           json={"metadata": {"resourceVersion": version}, "status": {"conditions": [theirs]}})
    assert response.status_code == 200, response.text
    PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test").write_condition("default", accepted())
    assert [c["type"] for c in conditions(stand_in)] == ["Synced", "Accepted"]
    assert conditions(stand_in)[0] == theirs


def test_a_very_long_message_is_cut_to_what_the_schema_allows(api: client.ApiClient, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    watch = PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test")
    assert watch.write_condition("default", accepted(False, "x" * 40_000))
    (written,) = conditions(stand_in)
    assert len(written["message"]) == 32768 and written["message"].endswith("...")
    assert not watch.write_condition("default", accepted(False, "x" * 40_000))  # the cut message compares equal


def test_a_condition_for_a_missing_object_is_a_permanent_peer_error(api: client.ApiClient) -> None:
    with pytest.raises(PermanentPeerError) as error:
        PolicyWatch(client.CustomObjectsApi(api), "kube-apiserver test").write_condition("nope", accepted())
    assert error.value.status == 404


# --- the stand-in serves the CRD's objects as the real API server does ----------------------------------------


def test_the_stand_in_lists_the_objects_with_the_collections_version(url: str, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    listing = httpx.get(url + COLLECTION).json()
    assert (listing["kind"], listing["apiVersion"]) == ("ElasticQuotaPolicyList", f"{GROUP}/{VERSION}")
    assert [item["metadata"]["name"] for item in listing["items"]] == ["default"]
    assert int(listing["metadata"]["resourceVersion"]) >= int(listing["items"][0]["metadata"]["resourceVersion"])


def test_the_stand_in_keeps_the_status_and_counts_generations_of_the_spec_only(stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    created = stand_in.get("default")
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    replaced = policy_object(TEAM_A)
    replaced["status"] = {"mood": "ignored: the status subresource owns it"}
    stand_in.put(replaced)
    same_spec = stand_in.get("default")
    assert same_spec["metadata"]["generation"] == 1 and "status" not in same_spec
    assert same_spec["metadata"]["uid"] == created["metadata"]["uid"]
    stand_in.put(policy_object(TEAM_B))
    assert stand_in.get("default")["metadata"]["generation"] == 2


def test_the_stand_in_refuses_a_spec_the_schema_refuses(stand_in: Any) -> None:
    bad = policy_object(TEAM_A)
    bad["spec"]["groups"][0]["name"] = "Not_A_Label"
    with pytest.raises(ValueError, match=r"spec.groups\[0\].name"):
        stand_in.put(bad)


def test_the_stand_in_refuses_a_condition_status_outside_its_enum(url: str, stand_in: Any) -> None:
    stand_in.put(policy_object(TEAM_A))
    maybe = {"type": "Accepted", "status": "Maybe", "lastTransitionTime": "2026-11-20T00:00:00Z", "reason": "X",
             "message": ""}
    response = httpx.patch(f"{url}{COLLECTION}/default/status", headers={"Content-Type": MERGE_PATCH},
                           json={"status": {"conditions": [maybe]}})
    assert response.status_code == 422 and "Unsupported value" in response.json()["message"]
