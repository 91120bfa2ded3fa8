"""The fleet: sites, clusters, links between sites, and nodes with their labels.

An ``Inventory`` is the broker's picture of where capacity lives. It is validated as a whole: names are unique, every
node's site and cluster exist, links join known sites. A node carries two independent labels that placement cares
about:

- ``disk`` / ``diskless``: whether it has local disks for shuffle data (old hardware often has none);
- ``stable`` / ``elastic``: whether its lendable capacity may be reclaimed at short notice. ApplicationMasters and
  Spark drivers go only on ``stable`` capacity, because killing one restarts the whole job.
"""

from __future__ import annotations

from enum import Enum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model.resources import ZERO, Resources
from broker.model.validation import unique_names

NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,251}[A-Za-z0-9])?$"
"""Names of sites, clusters, nodes, teams and classes: Kubernetes-like, plus ``:`` for YARN ``host:port`` ids."""


class SiteKind(str, Enum):
    """Where a site's machines come from."""

    IDC = "idc"
    CLOUD = "cloud"


class ClusterKind(str, Enum):
    """Which scheduler owns a cluster's offline work."""

    KUBERNETES = "kubernetes"
    YARN = "yarn"


class Site(BaseModel):
    """An IDC or a cloud region. ``cost_per_core_hour`` prices compute there (0 for owned, idle hardware)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: SiteKind = SiteKind.IDC
    cost_per_core_hour: float = Field(0.0, ge=0, le=1000)


class Cluster(BaseModel):
    """A Kubernetes or YARN cluster at one site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: ClusterKind = ClusterKind.KUBERNETES
    site: str


class Link(BaseModel):
    """A bidirectional link (dedicated line, cloud gateway) between two sites, with what online traffic uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a: str
    b: str
    capacity_mbps: int = Field(gt=0, le=10**9)
    online_used_mbps: int = Field(0, ge=0, le=10**9)

    @property
    def free_mbps(self) -> int:
        """Bandwidth left for offline traffic."""
        return max(self.capacity_mbps - self.online_used_mbps, 0)

    def joins(self, x: str, y: str) -> bool:
        """True when this link connects sites ``x`` and ``y`` (either direction)."""
        return {self.a, self.b} == {x, y}


class Node(BaseModel):
    """A machine whose spare capacity may be lent. ``capacity`` is its allocatable total, ``reserved`` what the
    system (kubelet, daemons) keeps; ``nic_mbps`` its NIC, shared by online traffic, HDFS and offline containers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    site: str
    cluster: str
    rack: str = ""
    capacity: Resources
    reserved: Resources = ZERO
    disk: bool = True
    stable: bool = False
    nic_mbps: int = Field(10_000, ge=0, le=10**7)

    @property
    def labels(self) -> frozenset[str]:
        """The placement labels: one of ``disk``/``diskless`` and one of ``stable``/``elastic``."""
        return frozenset({"disk" if self.disk else "diskless", "stable" if self.stable else "elastic"})

    @property
    def node_class(self) -> str:
        """The combined class (``disk-stable`` ...): YARN allows one partition label per node."""
        return f"{'disk' if self.disk else 'diskless'}-{'stable' if self.stable else 'elastic'}"


class Inventory(BaseModel):
    """Everything the broker knows about where capacity lives, validated as one document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sites: tuple[Site, ...] = Field(min_length=1, max_length=1000)
    clusters: tuple[Cluster, ...] = Field(default=(), max_length=10_000)
    links: tuple[Link, ...] = Field(default=(), max_length=100_000)
    nodes: tuple[Node, ...] = Field(default=(), max_length=200_000)

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        site_names = unique_names("sites", [s.name for s in self.sites])
        cluster_names = unique_names("clusters", [c.name for c in self.clusters])
        unique_names("nodes", [n.name for n in self.nodes])
        for i, cluster in enumerate(self.clusters):
            if cluster.site not in site_names:
                raise InputError(f"clusters[{i}].site", f"unknown site {cluster.site!r}")
        seen_links: set[frozenset[str]] = set()
        for i, link in enumerate(self.links):
            for end in ("a", "b"):
                if getattr(link, end) not in site_names:
                    raise InputError(f"links[{i}].{end}", f"unknown site {getattr(link, end)!r}")
            if link.a == link.b:
                raise InputError(f"links[{i}]", "a link joins two different sites")
            pair = frozenset({link.a, link.b})
            if pair in seen_links:
                raise InputError(f"links[{i}]", f"second link between {link.a!r} and {link.b!r}")
            seen_links.add(pair)
        cluster_site = {c.name: c.site for c in self.clusters}
        for i, node in enumerate(self.nodes):
            if node.site not in site_names:
                raise InputError(f"nodes[{i}].site", f"unknown site {node.site!r}")
            if node.cluster not in cluster_names:
                raise InputError(f"nodes[{i}].cluster", f"unknown cluster {node.cluster!r}")
            if cluster_site[node.cluster] != node.site:
                raise InputError(f"nodes[{i}].cluster",
                                 f"cluster {node.cluster!r} is at site {cluster_site[node.cluster]!r}, "
                                 f"not {node.site!r}")
            if not node.reserved.fits_in(node.capacity):
                raise InputError(f"nodes[{i}].reserved", "reserved exceeds capacity")
        return self

    def site(self, name: str) -> Site:
        """The site called ``name``."""
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    def link(self, x: str, y: str) -> Link | None:
        """The link between sites ``x`` and ``y``, if there is one."""
        for link in self.links:
            if link.joins(x, y):
                return link
        return None


__all__ = ["NAME_PATTERN", "Cluster", "ClusterKind", "Inventory", "Link", "Node", "Site", "SiteKind"]
