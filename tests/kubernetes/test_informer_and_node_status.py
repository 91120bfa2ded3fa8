"""The Kubernetes adapters (``plugins.kubernetes``) through the official client, against a stand-in API server
that speaks the real list/watch/patch protocol (``kube_apiserver``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from kubernetes import client

from broker.errors import PermanentPeerError, TemporaryPeerError
from broker.model import Resources
from plugins.kubernetes import Informer, NodeCapacitySink, capacity_patch
from plugins.kubernetes.node_status import Dimension

from .conftest import node_obj
from .kube_apiserver import StandInApiServer
from .wire import JSON_PATCH, MERGE_PATCH, canonical_quantity

CPU, MEMORY = "broker.elastic.io/batch-cpu", "broker.elastic.io/batch-memory"


def pod_obj(namespace: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
    }


@contextlib.contextmanager
def running(informer: Informer) -> Iterator[Informer]:
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert informer.synced.wait(5), "the informer never listed"
        yield informer
    finally:
        stop.set()
        informer.stop_watching()
        thread.join(timeout=10)


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time limit")
        time.sleep(0.02)


def nodes(core: client.CoreV1Api, **options: Any) -> Informer:
    return Informer(core.list_node, "kube-apiserver test", watch_timeout_s=1, retry_s=0.05, **options)


def test_the_informer_lists_the_nodes_there_are(core: client.CoreV1Api) -> None:
    with running(nodes(core)) as informer:
        assert set(informer.snapshot()) == {"n1", "n2"}
        assert informer.lists == 1


def test_watched_changes_reach_the_copy(core: client.CoreV1Api, server: StandInApiServer) -> None:
    with running(nodes(core)) as informer:
        server.put("nodes", node_obj("n3"))
        relabelled = node_obj("n1")
        relabelled["metadata"]["labels"] = {"disk": "false"}
        server.put("nodes", relabelled)
        server.delete("nodes", "n2")
        eventually(
            lambda: (
                set(informer.snapshot()) == {"n1", "n3"}
                and informer.snapshot()["n1"].metadata.labels == {"disk": "false"}
            )
        )
        assert informer.lists == 1


def test_a_watch_that_times_out_is_resumed_without_listing_again(
    core: client.CoreV1Api, server: StandInApiServer
) -> None:
    with running(nodes(core)) as informer:
        eventually(lambda: informer.watches >= 2, timeout_s=4)
        server.put("nodes", node_obj("n3"))
        eventually(lambda: "n3" in informer.snapshot())
        assert informer.lists == 1 and informer.last_error is None


def test_a_watch_answered_410_gone_lists_again(core: client.CoreV1Api, server: StandInApiServer) -> None:
    def while_down(stand_in: StandInApiServer) -> None:
        stand_in.delete("nodes", "n1")
        stand_in.put("nodes", node_obj("n3"))

    with running(nodes(core)) as informer:
        server.restart(while_down)
        eventually(lambda: set(informer.snapshot()) == {"n2", "n3"})
        assert informer.lists == 2 and informer.last_error is None


def test_a_resync_lists_again_after_its_period(core: client.CoreV1Api) -> None:
    with running(nodes(core, resync_s=0.5)) as informer:
        eventually(lambda: informer.lists >= 2, timeout_s=4)
        assert set(informer.snapshot()) == {"n1", "n2"}


def test_pods_of_every_namespace_are_keyed_by_namespace_and_name(
    core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.put("pods", pod_obj("team-a", "exec-1"))
    informer = Informer(core.list_pod_for_all_namespaces, "kube-apiserver test", watch_timeout_s=1)
    with running(informer):
        server.put("pods", pod_obj("team-b", "exec-1"))
        eventually(lambda: set(informer.snapshot()) == {"team-a/exec-1", "team-b/exec-1"})


def test_an_unreachable_server_is_a_temporary_peer_error() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # the discard port: nothing listens
    with client.ApiClient(configuration) as api:
        informer = Informer(client.CoreV1Api(api).list_node, "kube-apiserver down", retry_s=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=informer.run, args=(stop,), daemon=True)
        thread.start()
        eventually(lambda: informer.last_error is not None)
        stop.set()
        thread.join(timeout=10)
    assert isinstance(informer.last_error, TemporaryPeerError)
    assert informer.last_error.peer == "kube-apiserver down"


# --- node status -----------------------------------------------------------------------------------------


def sink(core: client.CoreV1Api) -> NodeCapacitySink:
    return NodeCapacitySink(core, "kube-apiserver test", CPU, MEMORY)


def capacity(core: client.CoreV1Api, name: str) -> dict[str, str]:
    found: dict[str, str] = core.read_node(name).status.capacity
    return found


def test_the_first_write_adds_both_resources_with_one_json_patch(
    core: client.CoreV1Api, server: StandInApiServer
) -> None:
    sent = sink(core).write("n1", Resources.of(cpu="8", memory="32Gi"), capacity(core, "n1"))
    assert server.patches == [("n1", JSON_PATCH, sent)]
    assert sent == [
        {"op": "add", "path": "/status/capacity/broker.elastic.io~1batch-cpu", "value": "8000"},
        {"op": "add", "path": "/status/capacity/broker.elastic.io~1batch-memory", "value": "32768Mi"},
    ]
    assert capacity(core, "n1") == {"cpu": "32", "memory": "128Gi", CPU: "8k", MEMORY: "32Gi"}


def test_a_node_that_already_advertises_the_values_is_not_written(
    core: client.CoreV1Api, server: StandInApiServer
) -> None:
    offline = Resources.of(cpu="8", memory="32Gi")
    sink(core).write("n1", offline, capacity(core, "n1"))
    assert sink(core).write("n1", offline, capacity(core, "n1")) == []  # stored as "8k" and "32Gi"
    assert len(server.patches) == 1


def test_only_the_resource_that_changed_is_patched(core: client.CoreV1Api, server: StandInApiServer) -> None:
    sink(core).write("n1", Resources.of(cpu="8", memory="32Gi"), capacity(core, "n1"))
    sent = sink(core).write("n1", Resources.of(cpu="6", memory="32Gi"), capacity(core, "n1"))
    assert sent == [{"op": "add", "path": "/status/capacity/broker.elastic.io~1batch-cpu", "value": "6000"}]
    assert capacity(core, "n1")[CPU] == "6k"


def test_the_node_informer_sees_the_written_capacity(core: client.CoreV1Api) -> None:
    with running(nodes(core)) as informer:
        sink(core).write("n2", Resources.of(cpu="4", memory="8Gi"), informer.snapshot()["n2"].status.capacity)
        eventually(lambda: informer.snapshot()["n2"].status.capacity.get(CPU) == "4k")


def test_writing_to_an_unknown_node_is_a_permanent_peer_error(core: client.CoreV1Api) -> None:
    with pytest.raises(PermanentPeerError) as error:
        sink(core).write("ghost", Resources.of(cpu="1"), {})
    assert error.value.status == 404


def test_the_patch_compares_quantities_by_value() -> None:
    wanted = {CPU: ("8000", Dimension.CPU), MEMORY: ("32768Mi", Dimension.MEMORY)}
    assert capacity_patch({CPU: "8k", MEMORY: "32Gi"}, wanted) == []
    assert capacity_patch({CPU: "8k", MEMORY: "not a quantity"}, wanted) == [
        {"op": "add", "path": "/status/capacity/broker.elastic.io~1batch-memory", "value": "32768Mi"}
    ]


# --- the stand-in enforces what the real API server enforces ----------------------------------------------


def patch(url: str, body: Any, content_type: str, node: str = "n1") -> httpx.Response:
    return httpx.patch(
        f"{url}/api/v1/nodes/{node}/status",
        content=orjson.dumps(body),
        headers={"Content-Type": content_type},
    )


def test_the_stand_in_refuses_a_patch_of_unknown_content_type(url: str) -> None:
    response = patch(url, {"status": {}}, "application/json")
    assert response.status_code == 415 and response.json()["reason"] == "UnsupportedMediaType"


def test_the_stand_in_refuses_a_fractional_extended_resource(url: str) -> None:
    ops = [{"op": "add", "path": "/status/capacity/broker.elastic.io~1batch-cpu", "value": "1500m"}]
    response = patch(url, ops, JSON_PATCH)
    assert response.status_code == 422 and "integer" in response.json()["message"]


def test_the_stand_in_refuses_to_replace_a_missing_member(url: str) -> None:
    ops = [{"op": "replace", "path": "/status/capacity/broker.elastic.io~1batch-cpu", "value": "1"}]
    assert patch(url, ops, JSON_PATCH).status_code == 422


def test_the_stand_in_refuses_a_json_patch_that_is_not_a_list(url: str) -> None:
    assert patch(url, {"op": "add"}, JSON_PATCH).status_code == 400


def test_the_stand_in_keeps_the_spec_on_a_status_patch(url: str, server: StandInApiServer) -> None:
    response = patch(url, {"spec": {"podCIDR": "x"}, "status": {"capacity": {CPU: "2000"}}}, MERGE_PATCH)
    assert response.status_code == 200
    assert server.node("n1")["spec"] == {"podCIDR": "10.0.0.0/24"}
    assert server.node("n1")["status"]["capacity"][CPU] == "2k"


def test_the_stand_in_answers_an_expired_watch_with_a_410_status_event(
    url: str, server: StandInApiServer
) -> None:
    server.restart()
    response = httpx.get(
        f"{url}/api/v1/nodes", params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "1"}
    )
    event = orjson.loads(response.content.splitlines()[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("8000", "8k"),
        ("1500", "1500"),
        ("32768Mi", "32Gi"),
        ("8000m", "8"),
        ("0Mi", "0"),
        ("1536Mi", "1536Mi"),
    ],
)
def test_the_stand_in_stores_quantities_in_canonical_form(given: str, stored: str) -> None:
    assert canonical_quantity(given, extended=True) == stored
