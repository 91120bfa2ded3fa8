"""The quota CRD's status writer (``plugins.kubernetes.quota_status``), against the stand-in API server serving
the project's own CRD (``deploy/crds/elasticquota.yaml``)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from kubernetes import client

from broker.errors import InputError, PermanentPeerError
from broker.model import Resources
from broker.quota import RuntimeQuota, compute_runtime_quota
from plugins.kubernetes.quota_status import (
    GROUP,
    PLURAL,
    VERSION,
    QuotaStatusWriter,
    quota_status,
    same_status,
    status_schema,
)
from tests.extender.live_server import live_server
from tests.quota.builders import group, policy

from .conftest import quota_crd
from .kube_apiserver import StandInApiServer
from .wire import MERGE_PATCH

GROUPS = (
    group("org").min(cpu="60", memory="200Gi"),
    group("team-a").under("org").min(cpu="40", memory="100Gi"),
    group("team-b").under("org").min(cpu="20", memory="100Gi"),
    group("batch").min(cpu="40", memory="200Gi"),
)
POLICY = policy(*GROUPS)
POOL = Resources.of(cpu="100", memory="400Gi")
USED = {
    "team-a": Resources.of(cpu="50", memory="64Gi"),
    "team-b": Resources.of(cpu="2"),
    "batch": Resources.of(cpu="8"),
}
STATUS_PATH = f"/apis/{GROUP}/{VERSION}/{PLURAL}/default/status"


def runtime(team_a_cpu: str = "70") -> RuntimeQuota:
    demand = {"team-a": Resources.of(cpu=team_a_cpu, memory="100Gi"), "batch": Resources.of(cpu="10", memory="50Gi")}
    return compute_runtime_quota(POLICY, POOL, demand)


def policy_object() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ElasticQuotaPolicy",
        "metadata": {"name": "default"},
        "spec": {"groups": [g.obj() for g in GROUPS]},
    }


@pytest.fixture
def custom(server: StandInApiServer, api: client.ApiClient) -> client.CustomObjectsApi:
    assert server.custom is not None
    server.custom.put(policy_object())
    return client.CustomObjectsApi(api)


def writer(custom: client.CustomObjectsApi) -> QuotaStatusWriter:
    return QuotaStatusWriter(custom, "kube-apiserver test")


def stored_status(server: StandInApiServer) -> Any:
    assert server.custom is not None
    return server.custom.get("default").get("status")


def test_the_crd_declares_the_status_subresource_and_the_writers_schema() -> None:
    version = quota_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert version["schema"]["openAPIV3Schema"]["properties"]["status"] == status_schema()
    assert (quota_crd()["spec"]["group"], version["name"], quota_crd()["spec"]["names"]["plural"]) == (
        GROUP, VERSION, PLURAL
    )


def test_the_status_holds_each_groups_runtime_used_borrowed_and_lent(
    custom: client.CustomObjectsApi, server: StandInApiServer
) -> None:
    assert writer(custom).write("default", runtime(), USED)
    status = stored_status(server)
    assert status["pool"] == {"cpu": "100", "memory": "400Gi", "disk": "0", "network": "0", "gpu": "0"}
    by_name = {g["name"]: g for g in status["groups"]}
    assert list(by_name) == ["org", "team-a", "team-b", "batch"]
    team_a = by_name["team-a"]
    assert (team_a["runtime"]["cpu"], team_a["used"]["cpu"], team_a["borrowed"]["cpu"], team_a["lent"]["cpu"]) == (
        "70", "50", "30", "0"
    )
    assert by_name["team-b"]["lent"] == {"cpu": "20", "memory": "100Gi", "disk": "0", "network": "0", "gpu": "0"}
    assert by_name["org"]["used"]["cpu"] == "52"  # team-a's 50 and team-b's 2


def test_an_unchanged_quota_writes_nothing(custom: client.CustomObjectsApi, server: StandInApiServer) -> None:
    assert server.custom is not None
    writer(custom).write("default", runtime(), USED)
    version = server.custom.get("default")["metadata"]["resourceVersion"]
    assert not writer(custom).write("default", runtime(), USED)
    assert server.custom.status_writes == 1
    assert server.custom.get("default")["metadata"]["resourceVersion"] == version


def test_a_changed_quota_is_written_again(custom: client.CustomObjectsApi, server: StandInApiServer) -> None:
    writer(custom).write("default", runtime(), USED)
    assert writer(custom).write("default", runtime(team_a_cpu="45"), USED)
    team_a = next(g for g in stored_status(server)["groups"] if g["name"] == "team-a")
    assert team_a["runtime"]["cpu"] == "45"


def test_the_writer_leaves_the_spec_alone(custom: client.CustomObjectsApi, server: StandInApiServer) -> None:
    assert server.custom is not None
    before = server.custom.get("default")["spec"]
    writer(custom).write("default", runtime(), USED)
    assert server.custom.get("default")["spec"] == before


def test_an_edit_between_read_and_write_is_retried(
    custom: client.CustomObjectsApi, server: StandInApiServer
) -> None:
    assert server.custom is not None
    stand_in = server.custom

    class EditedMeanwhile(client.CustomObjectsApi):
        edits = 1

        def patch_cluster_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
            if self.edits:
                self.edits -= 1
                stand_in.put(stand_in.get("default"))  # an admin's edit: a new resourceVersion
            return super().patch_cluster_custom_object_status(*args, **kwargs)

    assert QuotaStatusWriter(EditedMeanwhile(custom.api_client), "kube-apiserver test").write(
        "default", runtime(), USED
    )
    assert stand_in.status_writes == 1 and stored_status(server) == quota_status(runtime(), USED)


def test_quantities_are_compared_by_value() -> None:
    wanted = quota_status(runtime(), USED)
    spelled_differently = copy.deepcopy(wanted)
    spelled_differently["pool"]["cpu"] = "100000m"
    spelled_differently["groups"][0]["used"]["memory"] = "65536Mi"
    assert same_status(spelled_differently, wanted)
    spelled_differently["groups"][0]["used"]["memory"] = "65537Mi"
    assert not same_status(spelled_differently, wanted)


def test_usage_of_an_unknown_group_names_it(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(InputError) as error:
        writer(custom).write("default", runtime(), {"team-z": Resources.of(cpu="1")})
    assert error.value.field == "used.team-z"


def test_a_missing_policy_object_is_a_permanent_peer_error(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(PermanentPeerError) as error:
        writer(custom).write("nope", runtime(), USED)
    assert error.value.status == 404


def test_a_crd_whose_status_schema_lacks_a_field_makes_the_strict_write_fail(api: client.ApiClient) -> None:
    crd = quota_crd()
    groups = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    del groups["groups"]["items"]["properties"]["lent"]
    groups["groups"]["items"]["required"].remove("lent")
    stand_in = StandInApiServer(crd=crd)
    assert stand_in.custom is not None
    stand_in.custom.put(policy_object())
    with live_server(stand_in.app) as url:
        configuration = client.Configuration()
        configuration.host = url
        with client.ApiClient(configuration) as other, pytest.raises(PermanentPeerError) as error:
            writer(client.CustomObjectsApi(other)).write("default", runtime(), USED)
    assert error.value.status == 400 and "lent" in error.value.message


# --- the stand-in enforces what the real API server enforces ----------------------------------------------


def test_the_stand_in_has_no_status_path_for_a_crd_without_the_subresource() -> None:
    crd = quota_crd()
    del crd["spec"]["versions"][0]["subresources"]
    stand_in = StandInApiServer(crd=crd)
    assert stand_in.custom is not None
    stand_in.custom.put(policy_object())
    with live_server(stand_in.app) as url:
        response = httpx.patch(url + STATUS_PATH, json={"status": {}}, headers={"Content-Type": MERGE_PATCH})
    assert response.status_code == 404


def test_the_stand_in_prunes_unknown_status_fields_with_a_warning(custom: client.CustomObjectsApi, url: str,
                                                                  server: StandInApiServer) -> None:
    response = httpx.patch(url + STATUS_PATH, json={"status": {"mood": "good"}}, headers={"Content-Type": MERGE_PATCH})
    assert response.status_code == 200 and "status.mood" in response.headers["Warning"]
    assert "mood" not in (stored_status(server) or {})


def test_the_stand_in_refuses_unknown_status_fields_under_strict_validation(
    custom: client.CustomObjectsApi, url: str
) -> None:
    response = httpx.patch(
        url + STATUS_PATH, params={"fieldValidation": "Strict"}, json={"status": {"mood": "good"}},
        headers={"Content-Type": MERGE_PATCH},
    )
    assert response.status_code == 400 and 'unknown field "status.mood"' in response.json()["message"]


def test_the_stand_in_refuses_a_status_of_the_wrong_shape(custom: client.CustomObjectsApi, url: str) -> None:
    response = httpx.patch(url + STATUS_PATH, json={"status": {"groups": [{"name": "a"}]}},
                           headers={"Content-Type": MERGE_PATCH})
    assert response.status_code == 422 and "status.groups[0].runtime: Required value" in response.json()["message"]


def test_the_stand_in_refuses_a_strategic_merge_patch_of_a_custom_resource(
    custom: client.CustomObjectsApi, url: str
) -> None:
    response = httpx.patch(url + STATUS_PATH, json={"status": {}},
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert response.status_code == 415


def test_the_stand_in_answers_a_stale_resource_version_with_409(
    custom: client.CustomObjectsApi, url: str
) -> None:
    response = httpx.patch(url + STATUS_PATH, json={"metadata": {"resourceVersion": "1"}, "status": {}},
                           headers={"Content-Type": MERGE_PATCH})
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"
