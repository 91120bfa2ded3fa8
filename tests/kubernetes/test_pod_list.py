"""Following pods without holding them whole: an informer stores what its transform makes of each object listed
or watched; ``ClusterPods`` keeps only the fields the broker reads (``kept``) and decodes its list as it arrives
(``decode_list``), one item at a time, against the stand-in API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from plugins.kubernetes.pods import ClusterPods, decode_list, kept
from tests.agent.kube_pods import PodsApiServer

from .conftest import node_obj
from .kube_apiserver import StandInApiServer
from .test_informer_and_node_status import eventually, nodes, running


@pytest.fixture
def server() -> StandInApiServer:
    """The stand-in with selector watches (what ``ClusterPods`` uses) and two nodes."""
    stand_in = PodsApiServer()
    stand_in.put("nodes", node_obj("n1"))
    stand_in.put("nodes", node_obj("n2"))
    return stand_in


def executor(name: str, node: str = "") -> dict[str, Any]:
    """A Spark executor as the API server holds it, with much the broker does not read."""
    batch = {"broker.elastic.io/batch-cpu": "2000", "broker.elastic.io/batch-memory": "4Gi"}
    return {
        "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}", "labels": {"spark-role": "executor"},
                     "managedFields": [{"manager": "okhttp", "operation": "Update", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
        "spec": {"nodeName": node,
                 "containers": [{"name": "exec", "image": "registry.invalid/spark:3.5",
                                 "env": [{"name": "SPARK_USER", "value": "spark"}],
                                 "resources": {"requests": batch, "limits": batch}}],
                 "volumes": [{"name": "spark-local-dir-1", "emptyDir": {}}]},
        "status": {"phase": "Running" if node else "Pending",
                   "conditions": [{"type": "PodScheduled", "status": "True" if node else "False"}]},
    }


# --- an informer's transform -------------------------------------------------------------------------------------


def test_an_informer_stores_its_transform_of_each_object_and_still_follows_their_keys_and_versions(
        core: client.CoreV1Api, server: StandInApiServer) -> None:
    """The transform keeps only the labels: the key and the resourceVersion still come from the objects as sent,
    so the watch resumes where it was and never lists again."""
    with running(nodes(core, transform=lambda node: node.metadata.labels)) as informer:
        assert informer.snapshot() == {"n1": {"disk": "true"}, "n2": {"disk": "true"}}
        relabelled = node_obj("n1")
        relabelled["metadata"]["labels"] = {"disk": "false"}
        server.put("nodes", relabelled)
        server.delete("nodes", "n2")
        server.put("nodes", node_obj("n3"))
        eventually(lambda: informer.snapshot() == {"n1": {"disk": "false"}, "n3": {"disk": "true"}})
        eventually(lambda: informer.resource_version == str(server.current_version()))
        assert informer.lists == 1 and informer.last_error is None


def test_cluster_pods_keep_only_the_read_fields_of_pods_listed_and_watched(url: str, server: StandInApiServer) -> None:
    server.put("pods", executor("exec-1"))
    server.put("pods", executor("exec-2"))
    configuration = client.Configuration()
    configuration.host = url
    pods = ClusterPods(client.ApiClient(configuration), "kube-apiserver test", watch_timeout_s=1, retry_s=0.05)

    def as_kept() -> dict[str, Any]:
        return {key: kept(obj) for key, obj in server.objects("pods").items()}

    pods.start()
    try:
        assert pods.wait_first_list(5)
        listed = pods.snapshot()
        assert listed == as_kept()
        assert listed["team-a/exec-1"] == {
            "metadata": {"name": "exec-1", "namespace": "team-a", "uid": "uid-exec-1",
                         "resourceVersion": server.objects("pods")["team-a/exec-1"]["metadata"]["resourceVersion"],
                         "labels": {"spark-role": "executor"}},
            "spec": {"nodeName": "", "containers": [{"resources": executor("exec-1")["spec"]["containers"][0][
                "resources"]}]},
            "status": {"phase": "Pending"}}
        server.put("pods", executor("exec-1", node="n1"))
        server.put("pods", executor("exec-3"))
        server.delete("pods", "team-a/exec-2")
        eventually(lambda: pods.snapshot() == as_kept())
        assert set(pods.snapshot()) == {"team-a/exec-1", "team-a/exec-3"}
        assert pods.snapshot()["team-a/exec-1"]["spec"]["nodeName"] == "n1" and pods.error is None
    finally:
        pods.close()


# --- a list decoded as it arrives ---------------------------------------------------------------------------------

LISTING: dict[str, Any] = {
    "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "123456", "continue": ""},
    "items": [
        executor("exec-1"),
        executor("exec-2", node="n1"),
        {"metadata": {"name": "quoted \"\\ \u00e9\u2603\U0001f680", "annotations": {"a": "{\"b\": [1, 2]}"}},
         "numbers": [0, -1, 12345678901234567890, 2.5e-3, 1e3, True, False, None], "empty": [{}, []]},
    ],
}


def chunked(text: bytes, size: int) -> Iterator[bytes]:
    return (text[i:i + size] for i in range(0, len(text), size))


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_a_list_decoded_as_it_arrives_is_the_list_decoded_whole_wherever_the_chunks_break(
        indent: int | None, size: int) -> None:
    """Chunks of one byte break every multi-byte character, escape, number and literal."""
    text = json.dumps(LISTING, indent=indent, ensure_ascii=False).encode()
    listing = decode_list(chunked(text, size))
    assert list(listing["items"]) == LISTING["items"]
    assert listing["metadata"] == LISTING["metadata"]


def test_the_lists_metadata_may_follow_its_items_and_other_members_are_skipped() -> None:
    listing = decode_list([b'{"items":[{"a":1}],"kind":"PodList","x":{"items":[2]},',
                           b'"metadata":{"resourceVersion":"7"}}'])
    assert listing["metadata"] == {}  # not met yet
    assert list(listing["items"]) == [{"a": 1}]
    assert listing["metadata"] == {"resourceVersion": "7"}


@pytest.mark.parametrize("text", [b'{"metadata":{"resourceVersion":"7"},"items":[]}',
                                  b'{"metadata":{"resourceVersion":"7"},"items":null}',
                                  b' {"metadata": {"resourceVersion": "7"}} \n'],
                         ids=["empty", "null", "absent"])
def test_a_list_of_no_items_has_none(text: bytes) -> None:
    listing = decode_list([text])
    assert list(listing["items"]) == [] and listing["metadata"] == {"resourceVersion": "7"}


@pytest.mark.parametrize(("text", "says"), [
    (b'{"items":[{"a":1},{"b":', "Expecting value at character 23"),
    (b'{"items":[{"a":1} {"b":2}]}', "expected , or ] at character 18, found '{'"),
    (b'{"items":[{"a":1}]', "expected , or } at character 18, found the end"),
    (b'{"items":[]} {}', "extra data after the list at character 13"),
    (b'[{"a":1}]', "expected { at character 0, found '['"),
    (b'{"items":[],7:[]}', "expected a member name at character 12"),
    (b"", "expected { at character 0, found the end"),
], ids=["cut-off", "no-comma", "unclosed", "trailing", "not-an-object", "unnamed-member", "empty"])
def test_a_malformed_list_is_an_error_saying_where(text: bytes, says: str) -> None:
    with pytest.raises(ValueError, match="list response: ") as caught:
        list(decode_list(chunked(text, 5))["items"])
    assert says in str(caught.value)


def test_an_item_that_never_ends_is_refused_without_reading_on() -> None:
    """An API server's objects are at most a few MiB (etcd's limit): a value running past 32 Mi characters is an
    error, not a reason to hold the rest of the response (reads grow by doubling, so at most twice that is read)."""
    read = 0

    def endless() -> Iterator[bytes]:
        nonlocal read
        yield b'{"items":[{"log":"'
        while True:
            read += 1 << 20
            yield b"a" * (1 << 20)

    with pytest.raises(ValueError, match="no value ends within 33554432 characters of character 10"):
        list(decode_list(endless())["items"])
    assert read < 64 << 20
