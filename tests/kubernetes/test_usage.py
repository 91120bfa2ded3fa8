"""Online usage from the metrics API (``plugins.kubernetes.usage``), against the stand-in's metrics.k8s.io."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from kubernetes import client

from broker.capacity.history import UsageHistory
from broker.errors import PermanentPeerError, QuantityError, TemporaryPeerError
from plugins.kubernetes.usage import MetricsApiUsage, usage_pair

from .conftest import Clock
from .kube_apiserver import StandInApiServer

CPU, MEMORY = "broker.elastic.io/batch-cpu", "broker.elastic.io/batch-memory"
NOW = "2026-11-21T10:00:00Z"
NODES = ("n1", "n2", "n3")


def pod(namespace: str, name: str, node: str, offline: bool, phase: str = "Running", init: bool = False) -> Any:
    resources = {"requests": {CPU: "2000", MEMORY: "4Gi"}} if offline else {"requests": {"cpu": "1"}}
    container = {"name": "c", "image": "registry.invalid/app:1", "resources": resources}
    plain = {"name": "c", "image": "registry.invalid/app:1"}
    spec = {"nodeName": node, "containers": [plain], "initContainers": [container]} if init else {
        "nodeName": node, "containers": [container]
    }
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": {"phase": phase}}


@pytest.fixture
def source(api: client.ApiClient, clock: Clock) -> MetricsApiUsage:
    return MetricsApiUsage(client.CustomObjectsApi(api), "metrics test", {CPU, MEMORY}, max_age_s=60, clock=clock)


def read(source: MetricsApiUsage, core: client.CoreV1Api) -> Any:
    return source.read(NODES, core.list_pod_for_all_namespaces().items)


def test_node_usage_is_read_in_the_given_order_in_millicores_and_mib(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n2", "1250m", "8Gi", NOW)
    server.metrics.set_node("n1", "2", "123456Ki", NOW)
    server.metrics.set_node("n3", "1234567n", "1Mi", NOW)
    usage = read(source, core)
    assert usage.nodes == NODES
    assert usage.cpu_milli.tolist() == [2000, 1250, 2]  # 1.234567m rounds up
    assert usage.memory_mib.tolist() == [121, 8192, 1]  # 123456Ki = 120.56Mi rounds up
    assert usage.seen.tolist() == [True, True, True] and usage.problems == ()


def test_offline_pods_usage_is_subtracted_from_their_node(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    for name in NODES:
        server.metrics.set_node(name, "10", "32Gi", NOW)
    server.put("pods", pod("team-a", "exec-1", "n1", offline=True))
    server.put("pods", pod("team-a", "web-1", "n1", offline=False))
    server.put("pods", pod("team-b", "exec-2", "n2", offline=True, init=True))
    server.metrics.set_pod("team-a", "exec-1", NOW, main=("3000000000n", "4Gi"), sidecar=("500m", "1Gi"))
    server.metrics.set_pod("team-a", "web-1", NOW, main=("2", "2Gi"))  # online: stays in the node's usage
    server.metrics.set_pod("team-b", "exec-2", NOW, main=("1", "2Gi"))
    usage = read(source, core)
    assert usage.cpu_milli.tolist() == [6500, 9000, 10000]
    assert usage.memory_mib.tolist() == [27 * 1024, 30 * 1024, 32 * 1024]
    assert sorted(server.metrics.requests) == sorted([
        "/apis/metrics.k8s.io/v1beta1/nodes",
        "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods",
        "/apis/metrics.k8s.io/v1beta1/namespaces/team-b/pods",
    ])


def test_finished_offline_pods_are_not_subtracted(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n1", "10", "32Gi", NOW)
    server.put("pods", pod("team-a", "exec-1", "n1", offline=True, phase="Succeeded"))
    server.metrics.set_pod("team-a", "exec-1", NOW, main=("3", "4Gi"))
    assert read(source, core).cpu_milli[0] == 10000


def test_online_usage_never_goes_below_zero(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n1", "1", "1Gi", NOW)  # node and pod scraped at different moments
    server.put("pods", pod("team-a", "exec-1", "n1", offline=True))
    server.metrics.set_pod("team-a", "exec-1", NOW, main=("2", "2Gi"))
    usage = read(source, core)
    assert (usage.cpu_milli[0], usage.memory_mib[0]) == (0, 0)


def test_an_offline_pod_without_metrics_counts_as_using_nothing(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n1", "4", "8Gi", NOW)
    server.put("pods", pod("team-a", "exec-new", "n1", offline=True))
    assert read(source, core).cpu_milli[0] == 4000


def test_a_node_with_old_or_no_metrics_is_unseen(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer, clock: Clock
) -> None:
    server.metrics.set_node("n1", "4", "8Gi", "2026-11-21T09:59:00Z")  # exactly 60 s old: still fresh
    server.metrics.set_node("n2", "4", "8Gi", "2026-11-21T09:58:59Z")
    usage = read(source, core)
    assert usage.seen.tolist() == [True, False, False]
    assert usage.cpu_milli.tolist() == [4000, 0, 0]
    assert len(usage.problems) == 1 and "n2" in usage.problems[0]


def test_a_node_whose_usage_cannot_be_read_is_unseen_and_reported(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n1", "lots", "8Gi", NOW)
    usage = read(source, core)
    assert not usage.seen[0] and "node n1.usage.cpu" in usage.problems[0]


def test_the_sample_goes_into_the_usage_history(
    source: MetricsApiUsage, core: client.CoreV1Api, server: StandInApiServer
) -> None:
    server.metrics.set_node("n1", "3", "6Gi", NOW)
    server.metrics.set_node("n3", "1", "2Gi", NOW)
    history = UsageHistory(len(NODES))
    read(source, core).record(history, now_s=1_000.0)
    assert history.last.tolist() == [[3000, 0, 1000], [6144, 0, 2048]]
    assert np.isinf(history.last_seen_s[1]) and history.last_seen_s[0] == 1_000.0


def test_a_metrics_api_that_is_not_there_is_a_temporary_peer_error(clock: Clock) -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    with client.ApiClient(configuration) as down:
        source = MetricsApiUsage(client.CustomObjectsApi(down), "metrics down", {CPU}, clock=clock)
        with pytest.raises(TemporaryPeerError):
            source.read(NODES, [])


def test_an_answer_without_items_is_a_permanent_peer_error(clock: Clock) -> None:
    class Empty(client.CustomObjectsApi):
        def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            return {"kind": "NodeMetricsList"}

    with pytest.raises(PermanentPeerError):
        MetricsApiUsage(Empty(client.ApiClient()), "metrics", {CPU}, clock=clock).read(NODES, [])


@pytest.mark.parametrize(("cpu", "milli"), [("1250m", 1250), ("2", 2000), ("1234567n", 2), ("0", 0), ("999999n", 1)])
def test_cpu_quantities_round_up_to_millicores(cpu: str, milli: int) -> None:
    assert usage_pair({"cpu": cpu, "memory": "0"}, "x")[0] == milli


def test_a_usage_without_memory_names_the_field() -> None:
    with pytest.raises(QuantityError) as error:
        usage_pair({"cpu": "1"}, "node n1")
    assert error.value.field == "node n1.usage.memory"


def test_the_stand_in_refuses_selectors_it_does_not_model(url: str) -> None:
    response = httpx.get(f"{url}/apis/metrics.k8s.io/v1beta1/nodes", params={"labelSelector": "a=b"})
    assert response.status_code == 400
