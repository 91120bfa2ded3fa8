"""The quota status sink (``sinks.quota_status``): after each published plan the leader writes the cycle's runtime
quota, used, borrowed and lent amounts per group to the ``ElasticQuotaPolicy`` object's status; an unchanged
status is not written again; an API server that fails or hangs is counted under the sink's own name and the
cycle still publishes. Against the stand-in API server serving the project's CRD (``deploy/crds``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from broker.errors import InputError
from broker.service.control.config import load_service_config
from broker.service.control.loop import CycleOutcome
from broker.service.control.quota_status import used_by_group
from broker.service.control.service import Replica, build
from plugins.kubernetes.quota_status import GROUP, PLURAL, VERSION, quota_status
from tests.kubernetes.kube_apiserver import Fault, StandInApiServer
from tests.service.conftest import service_config
from tests.service.kubernetes_peer import CLUSTER, clusters_file

POLICY = "default"
SINK = f"quota-status:{CLUSTER}"


def _replica(directory: Path, url: str, **sinks: Any) -> Replica:
    return build(service_config(directory, kubernetes_clusters=str(clusters_file(directory, url)),
                                sinks={"quota_status": {"cluster": CLUSTER, "name": POLICY}, **sinks}), {})


def _with_policy_object(server: StandInApiServer, replica: Replica) -> None:
    """The policy the replica runs, as the admins' ``ElasticQuotaPolicy`` object (no status yet)."""
    policy = replica.store.policy()
    assert policy is not None
    assert server.custom is not None
    server.custom.put({"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticQuotaPolicy",
                       "metadata": {"name": POLICY}, "spec": {"groups": policy.for_storage()["groups"]}})


def _policy_object(server: StandInApiServer) -> dict[str, Any]:
    assert server.custom is not None
    return server.custom.get(POLICY)


def _cycle(replica: Replica) -> CycleOutcome:
    async def go() -> CycleOutcome:
        await replica.loop.campaign()
        return await replica.loop.cycle()

    return asyncio.run(go())


def _report(outcome: CycleOutcome) -> Any:
    return next(report for report in outcome.pushes if report.sink == SINK)


def test_a_cycles_runtime_quota_appears_in_the_policy_status(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    _with_policy_object(server, replica)
    outcome = _cycle(replica)
    assert outcome.plan is not None and outcome.quota is not None
    assert _report(outcome).ok
    status = _policy_object(server)["status"]
    assert status == quota_status(outcome.quota, used_by_group(outcome.quota, outcome.plan))
    assert [g["name"] for g in status["groups"]] == list(outcome.quota.groups)
    assert any(g["runtime"]["cpu"] != "0" for g in status["groups"])  # a real quota, not an empty shell
    assert any(g["used"]["cpu"] != "0" for g in status["groups"])
    assert _policy_object(server)["spec"]["groups"]  # the admins' spec is untouched


def test_an_unchanged_status_is_not_written_again(tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    _with_policy_object(server, replica)
    outcome = _cycle(replica)
    assert outcome.plan is not None and outcome.quota is not None
    assert server.custom is not None and server.custom.status_writes == 1
    version = _policy_object(server)["metadata"]["resourceVersion"]
    sink = replica.loop.quota_status
    assert sink is not None
    again = asyncio.run(sink.push(outcome.quota, outcome.plan))
    assert again.ok
    assert server.custom.status_writes == 1
    assert _policy_object(server)["metadata"]["resourceVersion"] == version


@pytest.mark.parametrize(("fault", "reason"), [
    pytest.param(Fault("status", path=f"/apis/{GROUP}/{VERSION}/{PLURAL}", status=503, times=5), "peer",
                 id="answers-503"),
    pytest.param(Fault("hang", path=f"/apis/{GROUP}/{VERSION}/{PLURAL}", seconds=3.0, times=5), "timeout",
                 id="hangs"),
])
def test_an_api_server_failure_is_counted_and_the_cycle_still_publishes(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], fault: Fault, reason: str) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url, timeout_s=0.5)
    _with_policy_object(server, replica)
    server.inject(fault)
    outcome = _cycle(replica)
    assert outcome.failed_step is None and outcome.plan is not None and outcome.plan.version == 1
    stored = replica.store.get_plan()
    assert stored is not None and stored.version == 1
    failed = _report(outcome)
    assert not failed.ok and failed.error
    exposition = replica.metrics.exposition()[0].decode()
    assert f'broker_push_failures_total{{path="loop",reason="{reason}",sink="{SINK}"}} 1.0' in exposition
    assert "status" not in _policy_object(server)


def test_a_replica_that_does_not_lead_writes_no_status(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    _with_policy_object(server, replica)
    outcome = asyncio.run(replica.loop.cycle())  # no campaign: this replica holds no lease
    assert outcome.failed_step == "publish" and outcome.pushes == []
    assert server.custom is not None and server.custom.status_writes == 0
    assert "status" not in _policy_object(server)


@pytest.mark.parametrize(("text", "field"), [
    ("sinks: {quota_status: {cluster: k8s-a}}\n", "sinks.quota_status"),
    ("kubernetes_clusters: c.yaml\nsinks: {quota_status: {cluster: k8s-a, name: Not_A_Name}}\n",
     "sinks.quota_status.name"),
    ("kubernetes_clusters: c.yaml\nsinks: {quota_status: {name: default}}\n", "sinks.quota_status.cluster"),
], ids=["no-clusters-file", "bad-object-name", "no-cluster"])
def test_a_bad_quota_status_setting_is_named(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_service_config(path, {})
    assert error.value.field == f"{path}.{field}"  # the file, then the field in it


def test_a_cluster_the_clusters_file_lacks_is_named(tmp_path: Path) -> None:
    config = service_config(tmp_path, kubernetes_clusters=str(clusters_file(tmp_path, "http://127.0.0.1:9")),
                            sinks={"quota_status": {"cluster": "k8s-z"}})
    with pytest.raises(InputError) as error:
        build(config, {})
    assert error.value.field == "sinks.quota_status.cluster"
