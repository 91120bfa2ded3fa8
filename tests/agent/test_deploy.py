"""The agent DaemonSet runs ``broker agent`` with flags the command accepts, reads the host read-only, and needs
neither the host's PID namespace nor root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main
import yaml

from tests.agent.test_cli import app

DAEMONSET = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "agent-daemonset.yaml"


def pod_spec() -> dict[str, Any]:
    (daemonset,) = [doc for doc in yaml.safe_load_all(DAEMONSET.read_text()) if doc]
    assert daemonset["kind"] == "DaemonSet"
    return dict(daemonset["spec"]["template"]["spec"])


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
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]


def test_the_host_is_mounted_read_only_without_host_pid_or_root() -> None:
    spec = pod_spec()
    (container,) = spec["containers"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert host_paths == {"host-proc": "/proc", "host-cgroup": "/sys/fs/cgroup"}
    assert all(m["readOnly"] for m in container["volumeMounts"])
    assert not spec.get("hostPID") and not spec.get("hostNetwork")
    assert spec["securityContext"]["runAsNonRoot"] is True
