"""The multi-cluster configuration (``plugins.kubernetes.config``): validation naming the field, and one
official ``ApiClient`` per cluster built from a kubeconfig context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from broker.errors import InputError
from broker.model.validation import parse
from plugins.kubernetes.config import ClustersConfig, api_client, api_clients, load_clusters


def kubeconfig(path: Path, **servers: str) -> Path:
    """A kubeconfig with one cluster, user and context per ``context=server``."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": next(iter(servers)),
        "clusters": [{"name": c, "cluster": {"server": s}} for c, s in servers.items()],
        "users": [{"name": c, "user": {"token": f"token-{c}"}} for c in servers],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in servers],
    }))
    return path


def clusters(*entries: dict[str, Any]) -> ClustersConfig:
    return parse(ClustersConfig, {"clusters": list(entries)})


def error_field(data: Any) -> str:
    with pytest.raises(InputError) as error:
        parse(ClustersConfig, data)
    return error.value.field


def test_each_cluster_gets_a_client_for_its_own_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", a="https://10.0.0.1:6443", b="https://10.0.0.2:6443")
    config = clusters(
        {"name": "k8s-a", "site": "idc-a", "kubeconfig": str(path), "context": "a"},
        {"name": "k8s-b", "site": "cloud-b", "kubeconfig": str(path), "context": "b"},
    )
    built = api_clients(config)
    try:
        assert {name: api.configuration.host for name, api in built.items()} == {
            "k8s-a": "https://10.0.0.1:6443",
            "k8s-b": "https://10.0.0.2:6443",
        }
        assert all(isinstance(api, client.ApiClient) for api in built.values())
    finally:
        for api in built.values():
            api.close()


def test_without_a_context_the_current_context_is_used(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", a="https://10.0.0.1:6443", b="https://10.0.0.2:6443")
    with api_client(clusters({"name": "k8s-a", "site": "idc-a", "kubeconfig": str(path)}).clusters[0]) as api:
        assert api.configuration.host == "https://10.0.0.1:6443"


def test_a_context_the_kubeconfig_lacks_is_named(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", a="https://10.0.0.1:6443")
    config = clusters(
        {"name": "k8s-a", "site": "idc-a", "kubeconfig": str(path), "context": "a"},
        {"name": "k8s-b", "site": "idc-b", "kubeconfig": str(path), "context": "nope"},
    )
    with pytest.raises(InputError) as error:
        api_clients(config)
    assert error.value.field == "clusters[1].context"


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    config = clusters({"name": "k8s-a", "site": "idc-a", "kubeconfig": str(tmp_path / "absent")})
    with pytest.raises(InputError) as error:
        api_clients(config)
    assert error.value.field == "clusters[0].kubeconfig"


def test_in_cluster_outside_a_pod_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError) as error:
        api_clients(clusters({"name": "k8s-a", "site": "idc-a", "in_cluster": True}))
    assert error.value.field == "clusters[0].in_cluster"


def test_relative_kubeconfig_paths_are_read_from_the_files_directory(tmp_path: Path) -> None:
    kubeconfig(tmp_path / "kubeconfig", a="https://10.0.0.1:6443")
    (tmp_path / "clusters.yaml").write_text(
        "clusters:\n- {name: k8s-a, site: idc-a, kubeconfig: kubeconfig, context: a}\n"
    )
    assert load_clusters(tmp_path / "clusters.yaml").clusters[0].kubeconfig == tmp_path / "kubeconfig"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"clusters": []}, "clusters", id="no-clusters"),
        pytest.param({"clusters": [{"name": "K8S A", "site": "idc-a", "in_cluster": True}]}, "clusters[0].name",
                     id="name-not-a-dns-label"),
        pytest.param({"clusters": [{"name": "a", "in_cluster": True}]}, "clusters[0].site", id="no-site"),
        pytest.param({"clusters": [{"name": "a", "site": "s"}]}, "clusters[0].kubeconfig", id="no-way-in"),
        pytest.param({"clusters": [{"name": "a", "site": "s", "in_cluster": True, "kubeconfig": "k"}]},
                     "clusters[0].kubeconfig", id="both-ways-in"),
        pytest.param({"clusters": [{"name": "a", "site": "s", "in_cluster": True, "context": "c"}]},
                     "clusters[0].context", id="context-without-kubeconfig"),
        pytest.param({"clusters": [{"name": "a", "site": "s", "kubeconfig": "k"},
                                   {"name": "a", "site": "t", "kubeconfig": "k"}]}, "clusters[1].name",
                     id="duplicate-name"),
        pytest.param({"clusters": [{"name": "a", "site": "s", "in_cluster": True},
                                   {"name": "b", "site": "t", "in_cluster": True}]}, "clusters[1].in_cluster",
                     id="two-in-cluster"),
        pytest.param({"clusters": [{"name": "a", "site": "s", "kubeconfig": "k", "kube_config": "x"}]},
                     "clusters[0].kube_config", id="unknown-field"),
    ],
)
def test_a_bad_configuration_names_the_field(data: Any, field: str) -> None:
    assert error_field(data) == field


def test_a_kubeconfig_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("clusters: [unclosed\n")
    config = clusters({"name": "k8s-a", "site": "idc-a", "kubeconfig": str(tmp_path / "kubeconfig")})
    with pytest.raises(InputError) as error:
        api_clients(config)
    assert error.value.field == "clusters[0].kubeconfig"
