"""The manifests under ``deploy/`` agree with the code they deploy: every YAML parses, the scheduler's
extender configuration names routes the server has and resources the extender manages, the Deployment's flags
are ones ``broker serve extender`` accepts, and the Service, TLS, RBAC and plan ConfigMap line up with
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import typer.main
import yaml
from starlette.routing import Route
from typer.core import TyperGroup

from broker.cli.main import app as cli
from broker.service.extender import (
    Conventions,
    Extender,
    ExtenderConfig,
    PlanDocument,
    create_app,
    tables_from_document,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# Kubernetes objects; deploy/prometheus holds Prometheus rule files (checked in tests/observability).
YAML_FILES = sorted(p for p in DEPLOY.rglob("*")
                    if p.suffix in {".yaml", ".yml"} and "prometheus" not in p.relative_to(DEPLOY).parts)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[dict[str, Any]]:
    kustomization = documents(KUBERNETES / "kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in documents(KUBERNETES / name)]


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def scheduler_extender() -> dict[str, Any]:
    config = documents(KUBERNETES / "scheduler" / "kube-scheduler-config.yaml")[0]
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    (extender,) = config["extenders"]
    return dict(extender)


def extender_container() -> dict[str, Any]:
    deployment = find("Deployment", "broker-extender")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def flags() -> dict[str, str]:
    """The Deployment's ``--name=value`` arguments after ``serve extender``."""
    args = extender_container()["args"]
    assert args[:2] == ["serve", "extender"]
    return dict(arg.removeprefix("--").split("=", 1) for arg in args[2:])


def test_yaml_files_are_found() -> None:
    assert KUBERNETES / "extender.yaml" in YAML_FILES and DEPLOY / "crds" / "elasticquota.yaml" in YAML_FILES


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(DEPLOY)) for p in YAML_FILES])
def test_every_yaml_under_deploy_parses_into_typed_objects(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)


def parse_serve_extender(args: list[str]) -> dict[str, Any]:
    """The options ``broker serve extender`` reads from ``args`` (parsed and checked by its CLI, not run)."""
    root = typer.main.get_command(cli)
    assert isinstance(root, TyperGroup)
    with root.make_context("broker", list(args)) as context:
        serve = root.get_command(context, "serve")
        assert isinstance(serve, TyperGroup)
        with serve.make_context("serve", args[1:], parent=context) as serve_context:
            command = serve.get_command(serve_context, "extender")
            assert command is not None
            with command.make_context("extender", args[2:], parent=serve_context) as leaf:
                return dict(leaf.params)


def test_the_deployment_flags_are_accepted_by_broker_serve_extender() -> None:
    params = parse_serve_extender(list(extender_container()["args"]))
    assert params["port"] == 8443 and params["stale_policy"] == "closed"


def test_a_flag_broker_serve_extender_does_not_accept_is_caught() -> None:
    with pytest.raises(typer.BadParameter):
        parse_serve_extender(["serve", "extender", "--plan=/p.json", "--stale-policy=sometimes"])


def test_the_scheduler_calls_routes_the_server_has() -> None:
    extender = scheduler_extender()
    prefix = urlsplit(extender["urlPrefix"]).path
    assert prefix == flags().get("url-prefix", "")
    server = create_app(Extender(ExtenderConfig()), url_prefix=prefix)
    routes = {r.path: r.methods for r in server.routes if isinstance(r, Route)}
    verbs = [extender[key] for key in ("filterVerb", "prioritizeVerb", "preemptVerb") if key in extender]
    assert verbs == ["filter", "prioritize", "preempt"]
    for verb in verbs:
        assert "POST" in (routes.get(f"{prefix}/{verb}") or set()), verb


def test_bind_verb_is_unset_since_no_binder_is_configured() -> None:
    assert "bindVerb" not in scheduler_extender()


def test_managed_resources_are_the_extenders_batch_resources() -> None:
    names = Conventions.for_domain(flags()["domain"])
    managed = scheduler_extender()["managedResources"]
    assert [r["name"] for r in managed] == [names.batch_cpu, names.batch_memory]
    assert all(r["ignoredByScheduler"] is False for r in managed)


def test_the_extender_is_node_cache_capable_fail_closed_and_weighted() -> None:
    extender = scheduler_extender()
    assert extender["nodeCacheCapable"] is True and extender["ignorable"] is False
    assert extender["weight"] >= 1 and extender["httpTimeout"].endswith("s")


def test_https_reaches_the_service_port_and_the_server_name_is_the_service() -> None:
    extender, service = scheduler_extender(), find("Service", "broker-extender")
    url = urlsplit(extender["urlPrefix"])
    namespace = service["metadata"]["namespace"]
    assert url.scheme == "https" and extender["enableHTTPS"] is True
    assert url.hostname == extender["tlsConfig"]["serverName"] == f"broker-extender.{namespace}.svc"
    (port,) = service["spec"]["ports"]
    assert url.port == port["port"]
    (container_port,) = [p for p in extender_container()["ports"] if p["name"] == port["targetPort"]]
    assert container_port["containerPort"] == int(flags()["port"])


def test_the_extender_serves_tls_from_the_mounted_secret() -> None:
    mounts = {m["name"]: m["mountPath"] for m in extender_container()["volumeMounts"]}
    volumes = {
        v["name"]: v for v in find("Deployment", "broker-extender")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["tls"]["secret"]["secretName"] == "broker-extender-tls"
    assert (
        flags()["tls-cert"] == f"{mounts['tls']}/tls.crt" and flags()["tls-key"] == f"{mounts['tls']}/tls.key"
    )


def test_at_least_two_replicas_with_probes_on_health_and_readiness() -> None:
    assert find("Deployment", "broker-extender")["spec"]["replicas"] >= 2
    container = extender_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_plan_configmap_is_mounted_as_a_directory_holding_a_valid_plan() -> None:
    plan_path = Path(flags()["plan"])
    mount = next(m for m in extender_container()["volumeMounts"] if m["name"] == "plan")
    assert mount["mountPath"] == str(plan_path.parent) and "subPath" not in mount
    configmap = find("ConfigMap", "broker-plan")
    data = yaml.safe_load(configmap["data"][plan_path.name])
    assert tables_from_document(PlanDocument(data)).version == 0


def rules() -> list[dict[str, Any]]:
    return list(find("ClusterRole", "broker")["rules"])


def allows(group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules())


@pytest.mark.parametrize(
    ("resource", "verb"),
    [("nodes", "list"), ("nodes", "watch"), ("pods", "list"), ("pods", "watch"), ("nodes/status", "patch")],
)
def test_the_broker_may_read_nodes_and_pods_and_patch_node_status(resource: str, verb: str) -> None:
    assert allows("", resource, verb)


def test_the_broker_may_not_bind_pods() -> None:
    assert not allows("", "pods/binding", "create")


def test_the_broker_may_read_the_quota_crd_and_write_its_status() -> None:
    (crd,) = documents(DEPLOY / "crds" / "elasticquota.yaml")
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    assert allows(group, plural, "watch") and allows(group, f"{plural}/status", "patch")


def test_the_broker_may_hold_a_lease_in_its_namespace() -> None:
    role = find("Role", "broker-leader-election")
    assert any(
        "coordination.k8s.io" in r["apiGroups"] and "leases" in r["resources"] and "update" in r["verbs"]
        for r in role["rules"]
    )
    binding = find("RoleBinding", "broker-leader-election")
    deployment = find("Deployment", "broker-extender")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": deployment["metadata"]["namespace"]}
    ]
    assert find("ServiceAccount", account)


def test_redis_is_a_statefulset_behind_its_headless_service() -> None:
    statefulset, service = find("StatefulSet", "broker-redis"), find("Service", "broker-redis")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert (
        service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    )
