"""The ``ElasticQuotaPolicy`` as the policy's source (``policy_source.kind: kubernetes``): an edit of the object
reaches the store and the next plan's runtime quota; an invalid edit applies nothing and says why on the object; the
broker's own status writes cause no new version; the watch survives an API server restart with compaction, a
deleted object and an API server that fails; and policy writes through the admin API or the CLI are refused while
the object is the source. Against the stand-in API server serving the project's CRD (``deploy/crds``), replicas
built from configuration as ``broker serve`` builds them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from broker.cli.main import app as cli
from broker.errors import InputError
from broker.model import Resources
from broker.quota import QuotaPolicy
from broker.service.admin_api import Role, Token, Tokens, create_app
from broker.service.control.config import PolicySourceKind, load_service_config
from broker.service.control.service import Replica, build, running
from broker.store import FileStore, MemoryStore, PolicyLog
from plugins.kubernetes.quota_status import GROUP, PLURAL, VERSION
from tests.kubernetes.kube_apiserver import Fault, StandInApiServer
from tests.redis_server import RedisServer
from tests.service.conftest import service_config
from tests.service.kubernetes_peer import CLUSTER, clusters_file

POLICY = "default"
AUTHOR = f"kubernetes:{CLUSTER}/{POLICY}@"
MANAGED = f"policy is managed by ElasticQuotaPolicy {POLICY} on cluster {CLUSTER}; edit it there"
SECRET = "admin-secret"
COLLECTION = f"/apis/{GROUP}/{VERSION}/{PLURAL}"


def _replica(directory: Path, url: str, **fields: Any) -> Replica:
    """A replica reading the policy from the object ``POLICY``, and writing its runtime quota to its status."""
    return build(service_config(directory, kubernetes_clusters=str(clusters_file(directory, url)),
                                policy_source={"kind": "kubernetes", "cluster": CLUSTER, "name": POLICY},
                                sinks={"quota_status": {"cluster": CLUSTER, "name": POLICY}}, **fields), {})


def _seeded(replica: Replica) -> QuotaPolicy:
    """The policy the replica started with (the simulated scenario's)."""
    policy = replica.store.policy()
    assert policy is not None
    return policy


def _edited(policy: QuotaPolicy, team: str, **limits: dict[str, str]) -> QuotaPolicy:
    """``policy`` with ``team``'s limits (``min``, ``max``) changed as given."""
    document = policy.for_storage()
    found = next(g for g in document["groups"] if g["name"] == team)
    for kind, amounts in limits.items():
        found[kind] = {**found.get(kind, {}), **amounts}
    return QuotaPolicy.from_document(document)


def _capped(policy: QuotaPolicy) -> QuotaPolicy:
    """``search`` (min 25%, max 60% of the pool) capped at 1% of it."""
    return _edited(policy, "search", min={"cpu": "1%"}, max={"cpu": "1%"})


def _put(server: StandInApiServer, policy: QuotaPolicy | dict[str, Any]) -> None:
    """``kubectl apply`` of the object with ``policy`` (a policy, or a raw spec) as its spec."""
    assert server.custom is not None
    spec = policy.for_storage() if isinstance(policy, QuotaPolicy) else policy
    server.custom.put({"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticQuotaPolicy",
                       "metadata": {"name": POLICY}, "spec": spec})


def _object(server: StandInApiServer) -> dict[str, Any]:
    assert server.custom is not None
    return server.custom.get(POLICY)


def _accepted(server: StandInApiServer) -> dict[str, Any]:
    """The object's ``Accepted`` condition (``{}`` while there is none)."""
    conditions = _object(server).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Accepted"), {})


def _accepted_is(server: StandInApiServer, status: str, generation: int) -> Callable[[], bool]:
    return lambda: (_accepted(server).get("status"), _accepted(server).get("observedGeneration")) == (
        status, generation)


def _share_of_pool(server: StandInApiServer, team: str) -> float | None:
    """``team``'s runtime CPU quota as a share of the pool, from the status the quota-status sink wrote."""
    status = _object(server).get("status", {})
    found = next((g for g in status.get("groups", []) if g["name"] == team), None)
    if found is None or "pool" not in status:
        return None
    return Resources.of(cpu=found["runtime"]["cpu"]).cpu_milli / Resources.of(cpu=status["pool"]["cpu"]).cpu_milli


def _head_author(replica: Replica) -> str:
    record = replica.store.policies.get(replica.store.policies.head())
    assert record is not None
    return record.author


def _failures(replica: Replica, reason: str) -> float:
    exposition = replica.metrics.exposition()[0].decode()
    line = next(x for x in exposition.splitlines()
                if x.startswith(f'broker_policy_source_failures_total{{reason="{reason}"}}'))
    return float(line.rsplit(" ", 1)[1])


async def until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.05)


async def plans_go_on(replica: Replica, cycles: int = 2) -> None:
    """Wait for ``cycles`` more published plans (the loop keeps running)."""
    start = replica.board.version
    await until(lambda: replica.board.version >= start + cycles, f"{cycles} more plans")


# --- edits -------------------------------------------------------------------------------------------------


def test_an_edit_of_the_object_reaches_the_store_and_the_next_plans_runtime_quota(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    seeded = _seeded(replica)
    _put(server, seeded)

    async def scenario() -> None:
        async with running(replica):
            await until(_accepted_is(server, "True", 1), "the identical object accepted")
            assert replica.store.policies.head() == 1  # the store held the same policy: nothing written
            await until(lambda: (_share_of_pool(server, "search") or 0) > 0.1, "search's runtime quota, uncapped")
            before_edit = int(_object(server)["metadata"]["resourceVersion"])
            _put(server, _capped(seeded))
            await until(lambda: replica.store.policy() == _capped(seeded), "the edit in the store")
            assert replica.store.policies.head() == 2 and _head_author(replica).startswith(AUTHOR)
            assert int(_head_author(replica).removeprefix(AUTHOR)) > before_edit  # a version carrying the edit
            await until(lambda: (_share_of_pool(server, "search") or 1) <= 0.0101, "the next plan's runtime quota")
            await until(_accepted_is(server, "True", 2), "the edit accepted")
            assert _accepted(server)["reason"] == "Applied"
            assert _accepted(server)["message"] == "in force as policy version 2"

    asyncio.run(scenario())


def test_an_invalid_edit_applies_nothing_and_the_condition_names_the_field(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], caplog: pytest.LogCaptureFixture) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    seeded = _seeded(replica)
    _put(server, seeded)
    invalid = seeded.for_storage()
    next(g for g in invalid["groups"] if g["name"] == "search")["max"]["cpu"] = "10%"  # below its min of 25%

    async def scenario() -> None:
        async with running(replica):
            await until(_accepted_is(server, "True", 1), "the object accepted")
            _put(server, invalid)
            await until(_accepted_is(server, "False", 2), "the invalid edit refused")
            refused = _accepted(server)
            assert refused["reason"] == "Invalid"
            assert refused["message"].startswith("spec.groups[search].min.cpu: min 25% is above max 10%")
            assert refused["message"].endswith("policy version 1 stays in force")
            await plans_go_on(replica)
            assert replica.store.policies.head() == 1 and replica.store.policy() == seeded
            assert replica.loop.policy == seeded  # the loop plans with the last good policy
            assert _failures(replica, "invalid") == 1
            assert _object(server)["status"]["groups"]  # the quota status is still there beside the condition
            _put(server, _capped(seeded))
            await until(_accepted_is(server, "True", 3), "the fixed object accepted")
            assert replica.store.policy() == _capped(seeded)

    with caplog.at_level(logging.ERROR, logger="broker.service.control.policy_source"):
        asyncio.run(scenario())
    (line,) = [r.getMessage() for r in caplog.records if "is invalid" in r.getMessage()]
    assert "spec.groups[search].min.cpu" in line and "generation 2" in line


def test_a_status_only_change_writes_no_new_version(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], caplog: pytest.LogCaptureFixture) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    _put(server, _capped(_seeded(replica)))
    assert server.custom is not None

    async def scenario() -> None:
        async with running(replica):
            await until(_accepted_is(server, "True", 1), "the object accepted")
            assert replica.store.policies.head() == 2
            writes = server.custom.status_writes if server.custom else 0
            version = _object(server)["metadata"]["resourceVersion"]
            response = httpx.patch(f"{url}{COLLECTION}/{POLICY}/status",
                                   headers={"Content-Type": "application/merge-patch+json"},
                                   json={"status": {"pool": {**_object(server)["status"]["pool"], "cpu": "1"}}})
            assert response.status_code == 200, response.text
            await plans_go_on(replica, cycles=3)
            assert server.custom is not None and server.custom.status_writes > writes + 1
            assert _object(server)["metadata"]["resourceVersion"] != version
            assert _object(server)["metadata"]["generation"] == 1
            assert replica.store.policies.head() == 2

    with caplog.at_level(logging.INFO, logger="broker.service.control.policy_source"):
        asyncio.run(scenario())
    assert len([r for r in caplog.records if "applied as policy version" in r.getMessage()]) == 1


# --- the API server and the object failing -------------------------------------------------------------------


def test_an_api_server_restart_with_compaction_is_relisted_and_still_converges(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    seeded = _seeded(replica)
    _put(server, seeded)

    async def scenario() -> None:
        async with running(replica):
            await until(_accepted_is(server, "True", 1), "the object accepted")
            server.restart(lambda _: _put(server, _capped(seeded)))  # an edit no watch sees; history compacted
            await until(lambda: replica.store.policy() == _capped(seeded), "the edit made while down, listed")
            await until(_accepted_is(server, "True", 2), "the edit accepted")

    asyncio.run(scenario())


def test_an_api_server_that_fails_keeps_the_last_policy_and_is_counted_until_it_answers(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    seeded = _seeded(replica)
    _put(server, _capped(seeded))

    async def scenario() -> None:
        async with running(replica):
            await until(_accepted_is(server, "True", 1), "the object accepted")
            server.inject(Fault("status", path=COLLECTION, method="GET", status=503, times=1000))
            server.restart()  # ends the open watch: the next list and watch meet the 503s
            await until(lambda: _failures(replica, "unreachable") >= 2, "failures counted")
            _put(server, seeded)  # not seen while the API server fails
            await plans_go_on(replica)
            assert replica.store.policy() == _capped(seeded) and replica.store.policies.head() == 2
            server.clear_faults()
            await until(lambda: replica.store.policy() == seeded, "the edit applied once the API answers")

    asyncio.run(scenario())


def test_a_deleted_object_keeps_the_last_policy_until_it_is_created_again(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], caplog: pytest.LogCaptureFixture) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    seeded = _seeded(replica)
    _put(server, _capped(seeded))
    assert server.custom is not None

    async def scenario() -> None:
        async with running(replica):
            await until(lambda: replica.store.policies.head() == 2, "the object applied")
            assert server.custom is not None
            server.custom.delete(POLICY)
            await until(lambda: _failures(replica, "missing") == 1, "the deletion noticed")
            await plans_go_on(replica)
            assert replica.store.policy() == _capped(seeded) and replica.store.policies.head() == 2
            _put(server, seeded)
            await until(lambda: replica.store.policy() == seeded, "the object created again, applied")

    with caplog.at_level(logging.WARNING, logger="broker.service.control.policy_source"):
        asyncio.run(scenario())
    assert any("was deleted" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_only_the_leader_applies_the_object(tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url)
    source = replica.policy_source
    assert source is not None
    _put(server, _capped(_seeded(replica)))
    source.objects.start()
    try:
        deadline = time.monotonic() + 10
        while not source.objects.synced and time.monotonic() < deadline:
            time.sleep(0.02)
        source.sync(leading=False)
        assert replica.store.policies.head() == 1 and _accepted(server) == {}
        source.sync(leading=True)
        assert replica.store.policies.head() == 2 and _accepted(server)["status"] == "True"
    finally:
        source.objects.stop()


# --- writes around the object are refused ------------------------------------------------------------------


def _tokens(directory: Path) -> Path:
    path = directory / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": [
        {"name": "ops", "sha256": hashlib.sha256(SECRET.encode()).hexdigest(), "role": "admin"}]}))
    return path


def _admin(app: Any, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://broker") as http:
            return await http.request(method, path, json=body, headers={"Authorization": f"Bearer {SECRET}"})

    return asyncio.run(send())


def test_the_admin_api_refuses_policy_writes_with_409_naming_the_object(
        tmp_path: Path, api_server: tuple[StandInApiServer, str]) -> None:
    _, url = api_server
    replica = _replica(tmp_path, url, http={"admin_tokens": str(_tokens(tmp_path))})
    policy = _capped(_seeded(replica)).for_storage()
    applied = _admin(replica.app, "PUT", "/admin/v1/policy", {"policy": policy, "expectedVersion": 1})
    rolled_back = _admin(replica.app, "POST", "/admin/v1/policy/rollback", {"version": 1, "expectedVersion": 1})
    for refused in (applied, rolled_back):
        assert refused.status_code == 409
        assert refused.json() == {"error": "managed", "detail": MANAGED}
    assert replica.store.policies.head() == 1


def test_quota_serve_refuses_writes_on_top_of_a_version_the_object_wrote() -> None:
    log = PolicyLog(MemoryStore())
    policy = QuotaPolicy.from_document({"groups": [{"name": "team-a", "min": {"cpu": "4"}}]})
    log.apply(policy, author=AUTHOR + "7")
    tokens = Tokens(tokens=(Token(name="ops", sha256=hashlib.sha256(SECRET.encode()).hexdigest(), role=Role.ADMIN),))
    app = create_app(log, tokens)  # `broker quota serve`: no configuration says who manages the policy
    changed = {"groups": [{"name": "team-a", "min": {"cpu": "8"}}]}
    refused = _admin(app, "PUT", "/v1/policy", {"policy": changed, "expectedVersion": 1})
    assert refused.status_code == 409 and refused.json()["detail"] == MANAGED
    log.apply(policy.model_copy(update={"groups": ()}), author="alice")  # a person's version on top
    assert _admin(app, "PUT", "/v1/policy", {"policy": changed, "expectedVersion": 2}).status_code == 201


def test_quota_apply_and_rollback_are_refused_on_top_of_a_version_the_object_wrote_unless_forced(
        tmp_path: Path) -> None:
    store = tmp_path / "store.json"
    log = PolicyLog(FileStore(store))
    log.apply(QuotaPolicy.from_document({"groups": [{"name": "team-a"}]}), author="alice")
    log.apply(QuotaPolicy.from_document({"groups": [{"name": "team-a", "min": {"cpu": "4"}}]}), author=AUTHOR + "7")
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "team-a", "min": {"cpu": "8"}}]}))
    runner = CliRunner()
    for args in (["quota", "apply", str(file)], ["quota", "rollback", "1"]):
        refused = runner.invoke(cli, [*args, "--store", str(store)])
        assert refused.exit_code == 2, refused.output
        assert MANAGED in " ".join(refused.output.split()) and "Traceback" not in refused.output
    assert FileStore(store).head() == 2
    forced = runner.invoke(cli, ["quota", "apply", str(file), "--store", str(store), "--force"])
    assert forced.exit_code == 0, forced.output
    assert FileStore(store).head() == 3


def test_a_cli_write_around_the_object_is_refused_and_a_forced_one_is_put_back(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], redis_server: RedisServer) -> None:
    server, url = api_server
    replica = _replica(tmp_path, url, store=redis_server.url)
    seeded = _seeded(replica)
    _put(server, _capped(seeded))
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(seeded.for_storage()))
    runner = CliRunner()

    async def scenario() -> None:
        async with running(replica):
            await until(lambda: replica.store.policies.head() == 2, "the object applied")
            refused = runner.invoke(cli, ["quota", "apply", str(file), "--store", redis_server.url])
            assert refused.exit_code == 2 and MANAGED in " ".join(refused.output.split()), refused.output
            assert replica.store.policies.head() == 2
            forced = runner.invoke(cli, ["quota", "apply", str(file), "--store", redis_server.url, "--force"])
            assert forced.exit_code == 0, forced.output
            await until(lambda: replica.store.policies.head() == 4, "the object's policy put back")
            assert replica.store.policy() == _capped(seeded) and _head_author(replica).startswith(AUTHOR)

    asyncio.run(scenario())


# --- configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "field"), [
    ("policy_source: {kind: kubernetes, cluster: k8s-a}\n", "policy_source.kind"),
    ("kubernetes_clusters: c.yaml\npolicy_source: {kind: kubernetes}\n", "policy_source.cluster"),
    ("kubernetes_clusters: c.yaml\npolicy_source: {kind: kubernetes, cluster: k8s-a, name: Not_A_Name}\n",
     "policy_source.name"),
    ("policy_source: {cluster: k8s-a}\n", "policy_source.cluster"),
    ("policy_source: {kind: configmap}\n", "policy_source.kind"),
    ("policy: q.yaml\nkubernetes_clusters: c.yaml\npolicy_source: {kind: kubernetes, cluster: k8s-a}\n", "policy"),
], ids=["no-clusters-file", "no-cluster", "bad-object-name", "cluster-without-kubernetes", "unknown-kind",
        "policy-file-too"])
def test_a_bad_policy_source_setting_is_named(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_service_config(path, {})
    assert error.value.field == f"{path}.{field}"  # the file, then the field in it


def test_a_cluster_the_clusters_file_lacks_is_named(tmp_path: Path) -> None:
    config = service_config(tmp_path, kubernetes_clusters=str(clusters_file(tmp_path, "http://127.0.0.1:9")),
                            policy_source={"kind": "kubernetes", "cluster": "k8s-z"})
    with pytest.raises(InputError) as error:
        build(config, {})
    assert error.value.field == "policy_source.cluster"


def test_the_policy_source_is_set_from_the_environment_too(tmp_path: Path) -> None:
    config = load_service_config(None, {"BROKER_KUBERNETES_CLUSTERS": str(tmp_path / "clusters.yaml"),
                                        "BROKER_POLICY_SOURCE__KIND": "kubernetes",
                                        "BROKER_POLICY_SOURCE__CLUSTER": "k8s-a"})
    assert config.policy_source.kind is PolicySourceKind.KUBERNETES
    assert (config.policy_source.cluster, config.policy_source.name) == ("k8s-a", "default")


def test_the_store_is_the_default_source() -> None:
    assert load_service_config(None, {}).policy_source.kind is PolicySourceKind.STORE
