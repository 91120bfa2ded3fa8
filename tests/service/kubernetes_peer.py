"""The Kubernetes API server as a replica meets it: the stand-in (Leases and the project's quota CRD) over real
HTTP, and the clusters file with a kubeconfig through which ``broker serve`` reaches it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.extender.live_server import live_server
from tests.kubernetes.conftest import quota_crd
from tests.kubernetes.kube_apiserver import StandInApiServer

CLUSTER = "k8s-a"
"""The cluster's name in the clusters file (``leader.cluster``, ``sinks.quota_status.cluster``)."""


def clusters_file(directory: Path, url: str) -> Path:
    """A clusters file naming one cluster, ``CLUSTER``, reached through a kubeconfig pointing at ``url``."""
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": CLUSTER,
        "clusters": [{"name": CLUSTER, "cluster": {"server": url}}],
        "users": [{"name": CLUSTER, "user": {"token": "test-token"}}],
        "contexts": [{"name": CLUSTER, "context": {"cluster": CLUSTER, "user": CLUSTER}}],
    }), encoding="utf-8")
    path = directory / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": [{"name": CLUSTER, "site": "idc-a", "kubeconfig": str(kubeconfig)}]}),
                    encoding="utf-8")
    return path


@contextlib.contextmanager
def served_api_server() -> Iterator[tuple[StandInApiServer, str]]:
    """The stand-in API server serving the project's ``ElasticQuotaPolicy`` CRD, and its URL, for the block."""
    server = StandInApiServer(crd=quota_crd())
    with live_server(server.app) as url:
        yield server, url
