"""The agent DaemonSet runs ``broker agent`` with flags the command accepts, reads the host read-only, and needs
neither the host's PID namespace nor root; its service account may only list and watch pods (for --driver-pods)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main
import yaml

from tests.agent.test_cli import app

DAEMONSET = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "agent-daemonset.yaml"


def manifests() -> dict[str, dict[str, Any]]:
    """The file's objects by kind (one of each)."""
    docs = [doc for doc in yaml.safe_load_all(DAEMONSET.read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs)
    return by_kind


def pod_spec() -> dict[str, Any]:
    return dict(manifests()["DaemonSet"]["spec"]["template"]["spec"])


def test_the_daemonsets_flags_are_accepted_by_broker_agent() -> None:
    (container,) = pod_spec()["containers"]
    args = container["args"]
    root = typer.main.get_command(app)
    with root.make_context("broker", list(args)) as context:
        command = root.get_command(context, "agent")  # type: ignore[attr-defined]
        with command.make_context("agent", args[1:], parent=context, default_map={"node": "n1"}) as leaf:
            params = leaf.params
    assert params["proc_root"] == Path("/host/proc") and params["cgroup_root"] == Path("/host/sys/fs/cgroup")
    assert params["interval_s"] == 1.0
    assert params["driver_pods"] is True and params["kubeconfig"] is None  # in-cluster: the service account
    assert params["driver_selector"] == ["spark-role=driver", "broker.elastic.io/role=am"]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]


def test_the_host_is_mounted_read_only_without_host_pid_or_root() -> None:
    spec = pod_spec()
    (container,) = spec["containers"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert host_paths == {"host-proc": "/proc", "host-cgroup": "/sys/fs/cgroup"}
    assert all(m["readOnly"] for m in container["volumeMounts"])
    assert not spec.get("hostPID") and not spec.get("hostNetwork")
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_agents_service_account_may_only_list_and_watch_pods() -> None:
    objects = manifests()
    account = objects["ServiceAccount"]["metadata"]
    assert pod_spec()["serviceAccountName"] == account["name"] and pod_spec()["automountServiceAccountToken"] is True
    assert objects["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": objects["ClusterRole"]["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]
