"""The stand-in RM answers as the contract says the real RM does, quirks included."""

from __future__ import annotations

import httpx

from .standin_rm import CS, RMServer, StandinRM

NODE = "/ws/v1/cluster/nodes/nm-0.example:8041"


def test_nested_body_sets_the_node_and_the_answer_is_the_stale_total(server: RMServer, rm: StandinRM) -> None:
    answer = httpx.post(
        f"{server.url}{NODE}/resource?user.name=bob",
        json={"resource": {"memory": 1024, "vCores": 3}, "overCommitTimeout": -1},
    )
    assert answer.status_code == 200
    assert answer.json() == {"resourceInfo": {"memory": 65536, "vCores": 32}}
    assert httpx.get(f"{server.url}{NODE}").json()["node"]["totalResource"] == {"memory": 1024, "vCores": 3}


def test_flat_body_is_accepted_and_zeroes_the_node(server: RMServer, rm: StandinRM) -> None:
    answer = httpx.post(f"{server.url}{NODE}/resource?user.name=bob", json={"memory": 1024, "vcores": 3})
    assert answer.status_code == 200
    assert rm.nodes["nm-0.example:8041"].total_mb == 0
    assert rm.nodes["nm-0.example:8041"].total_vcores == 0


def test_node_write_without_user_is_401_and_unknown_node_is_404(server: RMServer) -> None:
    body = {"resource": {"memory": 1, "vCores": 1}}
    assert httpx.post(f"{server.url}{NODE}/resource", json=body).status_code == 401
    assert (
        httpx.post(f"{server.url}/ws/v1/cluster/nodes/nope:1/resource?user.name=a", json=body).status_code
        == 404
    )


def test_body_without_json_content_type_is_415(server: RMServer) -> None:
    answer = httpx.post(
        f"{server.url}{NODE}/resource?user.name=a", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 415


def test_label_write_by_non_admin_is_401(server: RMServer) -> None:
    answer = httpx.post(
        f"{server.url}/ws/v1/cluster/add-node-labels?user.name=bob", json={"nodeLabelInfo": [{"name": "x"}]}
    )
    assert answer.status_code == 401


def test_label_exclusivity_defaults_to_false_over_rest(server: RMServer, rm: StandinRM) -> None:
    httpx.post(
        f"{server.url}/ws/v1/cluster/add-node-labels?user.name=yarn", json={"nodeLabelInfo": [{"name": "x"}]}
    )
    assert rm.labels == {"x": False}


def test_scheduler_conf_with_file_store_is_400(server: RMServer, rm: StandinRM) -> None:
    rm.conf_store = "file"
    assert httpx.get(f"{server.url}/ws/v1/cluster/scheduler-conf?user.name=yarn").status_code == 400


def test_children_summing_above_100_percent_are_refused(server: RMServer, rm: StandinRM) -> None:
    body = {"add-queue": {"queue-name": "root.a", "params": {"entry": [{"key": "capacity", "value": "10"}]}}}
    answer = httpx.put(f"{server.url}/ws/v1/cluster/scheduler-conf?user.name=yarn", json=body)
    assert answer.status_code == 400
    assert "capacity sum" in answer.text
    assert rm.conf_version == 1


def test_plain_object_params_are_accepted_and_ignored(server: RMServer, rm: StandinRM) -> None:
    body = {"update-queue": {"queue-name": "root.default", "params": {"maximum-capacity": "50"}}}
    answer = httpx.put(f"{server.url}/ws/v1/cluster/scheduler-conf?user.name=yarn", json=body)
    assert answer.status_code == 200
    assert f"{CS}root.default.maximum-capacity" not in rm.conf


def test_update_of_a_missing_queue_answers_200_and_stores_orphans(server: RMServer, rm: StandinRM) -> None:
    body = {
        "update-queue": {"queue-name": "root.ghost", "params": {"entry": [{"key": "capacity", "value": "5"}]}}
    }
    answer = httpx.put(f"{server.url}/ws/v1/cluster/scheduler-conf?user.name=yarn", json=body)
    assert answer.status_code == 200
    assert rm.conf[f"{CS}root.ghost.capacity"] == "5"
    assert "ghost" not in rm.conf[f"{CS}root.queues"]


def test_standby_redirect_keeps_the_query_string(server: RMServer, rm: StandinRM) -> None:
    rm.ha_state, rm.active_url = "STANDBY", "http://rm2:8088"
    answer = httpx.get(f"{server.url}/ws/v1/cluster/nodes?states=RUNNING")
    assert answer.status_code == 307
    assert answer.headers["location"] == "http://rm2:8088/ws/v1/cluster/nodes?states=RUNNING"
    assert httpx.get(f"{server.url}/ws/v1/cluster/info").json()["clusterInfo"]["haState"] == "STANDBY"


def test_standby_without_active_answers_refresh_and_no_location(server: RMServer, rm: StandinRM) -> None:
    rm.ha_state = "STANDBY"
    answer = httpx.get(f"{server.url}/ws/v1/cluster/nodes")
    assert answer.status_code == 307
    assert "location" not in answer.headers
    assert "refresh" in answer.headers


def test_empty_lists_are_null_and_old_jersey_renders_strings(server: RMServer, rm: StandinRM) -> None:
    assert httpx.get(f"{server.url}/ws/v1/cluster/apps").json() == {"apps": None}
    rm.old_jersey = True
    assert httpx.get(f"{server.url}/ws/v1/cluster/scheduler-conf/version?user.name=yarn").json() == {
        "versionID": "1"
    }
