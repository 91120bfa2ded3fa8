"""Configuration of the YARN clusters the bridge drives, one entry per ResourceManager (HA pair or triple).

A fleet usually runs several YARN clusters, one or more per IDC; each has its own RM addresses, caller,
team-to-queue mapping and node-id mapping. The file is YAML (or JSON)::

    clusters:
      - name: yarn-idc-a            # must equal NodePlan.cluster for the nodes this RM manages
        site: idc-a
        rm_urls: [http://rm1.idc-a:8088, http://rm2.idc-a:8088]
        user: yarn                  # sent as ?user.name= (simple auth); must be an RM admin for queue/label writes
        auth: {kind: spnego}        # optional: SPNEGO (Kerberos) instead of user.name; see ``auth``
        am_placement: queue-default # or off; see ``am_placement``
        team_queues:                # used for teams whose plan binding names no queue on this cluster
          search: [root.offline.search]
        node_ids:                   # Kubernetes node -> YARN NodeId, where the host name does not say it
          k8s-node-17: nm-17.idc-a:45454

Timeouts, retries and the anti-churn threshold have defaults that suit a 5,000-node cluster (see
``docs/yarn.md``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.errors import InputError
from broker.model import load, unique_names
from broker.model.inventory import NAME_PATTERN

NODE_ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}$"
"""A YARN NodeId: ``host:port``."""
QUEUE_PATH_PATTERN = r"^root(\.[A-Za-z0-9_-]{1,255}){1,16}$"
"""A full CapacityScheduler queue path below root (``root.offline.search``)."""


def _rm_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url.rstrip("/")


RMUrl = Annotated[str, AfterValidator(_rm_url)]
"""A ResourceManager's base URL (``http://rm1.idc-a:8088``), without a trailing slash."""


class NodeResourceMethod(StrEnum):
    """How node capacities reach the RM."""

    REST = "rest"
    """``POST /ws/v1/cluster/nodes/{id}/resource`` (Hadoop 3.3+)."""
    DYNAMIC_RESOURCES = "dynamic-resources"
    """Write ``dynamic-resources.xml`` and run ``yarn rmadmin -refreshNodesResources`` (older RMs)."""


class AmPlacement(StrEnum):
    """Whether the bridge points each team's AMs at a stable partition (``am_placement``)."""

    QUEUE_DEFAULT = "queue-default"
    """Set the team queues' ``default-node-label-expression`` to the team's stable partition."""
    OFF = "off"
    """Leave ``default-node-label-expression`` alone; jobs name their AM partition themselves."""


class SimpleAuthConfig(BaseModel):
    """Pseudo authentication: the cluster's ``user`` goes out as ``?user.name=``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["simple"] = "simple"


class SpnegoAuthConfig(BaseModel):
    """HTTP Negotiate (RFC 4559) with the caller's Kerberos credentials (``kinit`` or ``KRB5_CLIENT_KTNAME``).

    No secret is configured here: the credentials come from the process's environment.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["spnego"]
    principal: str | None = Field(
        None,
        pattern=r"^[^\s:]{1,256}$",
        description="Whose credentials to use (user@REALM); default: the default principal of the cache.",
    )
    service: str = Field("HTTP", pattern=r"^[A-Za-z0-9._-]{1,64}$", description="The RM's SPN service.")
    hostname_override: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$",
        description="The host of the RM's SPN (HTTP/<host>), when it differs from the host in rm_urls.",
    )


AuthConfig = Annotated[SimpleAuthConfig | SpnegoAuthConfig, Field(discriminator="kind")]


class YarnCluster(BaseModel):
    """One YARN cluster and how to reach and map it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    site: str = Field("", description="Accepted for older files and ignored: queue guarantees follow what the "
                      "plan placed on this cluster's own nodes (TeamPlan.placed_by_cluster).")
    rm_urls: tuple[RMUrl, ...] = Field(min_length=1, max_length=8)
    user: str = Field("yarn", pattern=r"^[A-Za-z0-9._@-]{1,128}$")
    auth: AuthConfig = SimpleAuthConfig()
    am_placement: AmPlacement = AmPlacement.QUEUE_DEFAULT
    team_queues: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    node_ids: dict[str, str] = Field(default_factory=dict, max_length=200_000)
    node_resource_method: NodeResourceMethod = NodeResourceMethod.REST
    timeout_s: float = Field(5.0, gt=0, le=300)
    retries: int = Field(
        3, ge=0, le=10, description="Retries of a transient failure (timeout, reset, 502/503/504)."
    )
    backoff_s: float = Field(0.2, ge=0, le=60, description="First retry delay; doubles per retry.")
    concurrency: int = Field(64, ge=1, le=1024, description="Node pushes in flight at once.")
    connections: int = Field(
        4,
        ge=1,
        le=64,
        description="Keep-alive connections a batch of node pushes is pipelined over; each carries up to "
        "concurrency / connections requests in flight.",
    )
    drift_check_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="How long a read of the RM's state is trusted: while it is younger and the plan asks for "
        "nothing new, a sync sends no request at all. 0 = read the RM on every sync.",
    )
    grow_permille: int = Field(
        100,
        ge=0,
        le=10_000,
        description="Anti-churn: grow a node only when a dimension rises by at least this many per mille.",
    )
    overcommit_timeout_ms: int = Field(-1, ge=-1, description="Sent with each node push; -1 = no timeout.")

    @field_validator("team_queues")
    @classmethod
    def _queues(cls, mapping: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for team, paths in mapping.items():
            check_queue_paths(paths, team)
        return mapping

    @field_validator("node_ids")
    @classmethod
    def _node_ids(cls, mapping: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for node, node_id in mapping.items():
            if not re.fullmatch(NODE_ID_PATTERN, node_id):
                raise InputError(node, f"{node_id!r} is not a YARN NodeId (host:port)")
            if node_id in seen:
                raise InputError(node, f"NodeId {node_id} is already mapped to {seen[node_id]!r}")
            seen[node_id] = node
        return mapping


class YarnConfig(BaseModel):
    """Every YARN cluster the broker drives; names unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clusters: tuple[YarnCluster, ...] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        unique_names("clusters", (cluster.name for cluster in self.clusters), "cluster")
        return self

    def cluster(self, name: str) -> YarnCluster:
        """The cluster called ``name``; ``InputError`` naming the known ones otherwise."""
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise InputError(
            "cluster",
            f"no YARN cluster {name!r} in the configuration "
            f"(known: {', '.join(c.name for c in self.clusters)})",
        )


def check_queue_paths(paths: tuple[str, ...], where: str) -> None:
    """Refuse queue paths that are not full ``root.x.y`` paths (the RM resolves short names ambiguously)."""
    for path in paths:
        if not re.fullmatch(QUEUE_PATH_PATTERN, path):
            raise InputError(where, f"{path!r} is not a full queue path such as 'root.offline.team'")


def load_config(path: Path) -> YarnConfig:
    """Read and validate a YARN configuration file; errors name the file and the field."""
    return load(YarnConfig, path)


__all__ = [
    "NODE_ID_PATTERN",
    "AmPlacement",
    "AuthConfig",
    "NodeResourceMethod",
    "SimpleAuthConfig",
    "SpnegoAuthConfig",
    "YarnCluster",
    "YarnConfig",
    "check_queue_paths",
    "load_config",
]
