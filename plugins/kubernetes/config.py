"""Which Kubernetes clusters one broker serves, and one official ``ApiClient`` per cluster.

One broker lends capacity across several clusters (IDCs and cloud regions). Each cluster has a name (the name
the plan's team bindings use, ``teams[].binding.namespaces.<cluster>``), the site its nodes belong to, and how to
reach it: a kubeconfig file and, optionally, one of its contexts (the current context otherwise), or the
in-cluster service account for the cluster the broker itself runs in::

    clusters:
    - {name: k8s-a, site: idc-a, in_cluster: true}
    - {name: k8s-b, site: idc-b, kubeconfig: /etc/broker/kubeconfig, context: idc-b-admin}
    - {name: k8s-c, site: cloud-c, kubeconfig: /etc/broker/kubeconfig, context: cloud-c}

Names are unique DNS labels; at most one cluster is ``in_cluster`` (a pod has one service account); a cluster
is reached either in-cluster or through a kubeconfig, never both. Relative kubeconfig paths are read from the
directory of the configuration file. Every mistake is an ``InputError`` naming the field
(``clusters[1].context``), including a context the kubeconfig does not have, found when the clients are built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model.validation import load, unique_names

_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class ClusterConfig(BaseModel):
    """One cluster: its name, its site and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_LABEL, description="The cluster's name in plans and team bindings.")
    site: str = Field(pattern=_LABEL, description="The site (IDC or cloud region) of its nodes.")
    kubeconfig: Path | None = Field(default=None, description="A kubeconfig file; not with in_cluster.")
    context: str | None = Field(default=None, min_length=1, description="A context of the kubeconfig.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account.")

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if self.in_cluster and self.kubeconfig is not None:
            raise InputError("kubeconfig", "a cluster is reached in-cluster or through a kubeconfig, not both")
        if not self.in_cluster and self.kubeconfig is None:
            raise InputError("kubeconfig", "required unless in_cluster is true")
        if self.context is not None and self.kubeconfig is None:
            raise InputError("context", "a context needs a kubeconfig")
        return self


class ClustersConfig(BaseModel):
    """Every cluster the broker serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clusters: tuple[ClusterConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        unique_names("clusters", (cluster.name for cluster in self.clusters), "cluster")
        in_cluster = [i for i, c in enumerate(self.clusters) if c.in_cluster]
        if len(in_cluster) > 1:
            raise InputError(f"clusters[{in_cluster[1]}].in_cluster", "only one cluster can be the broker's own")
        return self

    def relative_to(self, directory: Path) -> ClustersConfig:
        """The same clusters with relative kubeconfig paths resolved against ``directory``."""
        return self.model_copy(
            update={
                "clusters": tuple(
                    c.model_copy(update={"kubeconfig": directory / c.kubeconfig})
                    if c.kubeconfig is not None and not c.kubeconfig.is_absolute()
                    else c
                    for c in self.clusters
                )
            }
        )


def load_clusters(path: Path) -> ClustersConfig:
    """Read and validate a clusters file (YAML or JSON); errors name the file and the field."""
    return load(ClustersConfig, path).relative_to(path.parent)


def api_client(cluster: ClusterConfig, field: str = "") -> client.ApiClient:
    """An official ``ApiClient`` for ``cluster``. ``InputError`` naming ``field`` + the bad setting when the
    kubeconfig cannot be read, lacks the context, or the process is not in a pod (``in_cluster``)."""
    prefix = f"{field}." if field else ""
    if cluster.in_cluster:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise InputError(f"{prefix}in_cluster", f"not running in a pod with a service account: {exc}") from None
        return client.ApiClient(configuration)
    if cluster.kubeconfig is None or not cluster.kubeconfig.is_file():
        raise InputError(f"{prefix}kubeconfig", f"{cluster.kubeconfig}: no such file")
    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call,no-any-return]
            config_file=str(cluster.kubeconfig), context=cluster.context
        )
    except (ConfigException, yaml.YAMLError, ValueError, TypeError) as exc:
        where = "context" if cluster.context is not None and "context" in str(exc).lower() else "kubeconfig"
        raise InputError(f"{prefix}{where}", str(exc)) from None


def api_clients(clusters: ClustersConfig) -> dict[str, client.ApiClient]:
    """One ``ApiClient`` per cluster, by name; all or nothing (the ones built are closed on an error)."""
    built: dict[str, client.ApiClient] = {}
    try:
        for i, cluster in enumerate(clusters.clusters):
            built[cluster.name] = api_client(cluster, f"clusters[{i}]")
    except InputError:
        for api in built.values():
            api.close()  # type: ignore[no-untyped-call]
        raise
    return built


__all__ = ["ClusterConfig", "ClustersConfig", "api_client", "api_clients", "load_clusters"]
