"""Builders that read like the domain: ``fleet().site("a").node("n1", cpu="8", stable=True)...``."""

from __future__ import annotations

from typing import Any

from broker.model import Cluster, Demand, DemandClass, Inventory, Link, Node, Resources, Site, SiteKind
from broker.scheduler import PlacementProblem, QuotaDocument, TeamQuota


class ProblemBuilder:
    """Accumulates sites, nodes, links, classes and quotas, then builds a ``PlacementProblem``."""

    def __init__(self) -> None:
        self.sites: list[Site] = []
        self.clusters: list[Cluster] = []
        self.nodes: list[Node] = []
        self.links: list[Link] = []
        self.classes: list[DemandClass] = []
        self.teams: dict[str, TeamQuota] = {}
        self.lendable: dict[str, Resources] | None = None

    def site(self, name: str, *, cloud: bool = False, price: float = 0.0) -> ProblemBuilder:
        kind = SiteKind.CLOUD if cloud else SiteKind.IDC
        self.sites.append(Site(name=name, kind=kind, cost_per_core_hour=price))
        return self

    def cluster(self, name: str, site: str = "a") -> ProblemBuilder:
        """A cluster that may have no nodes (a node's own cluster is added by ``node``)."""
        self.clusters.append(Cluster(name=name, site=site))
        return self

    def node(self, name: str, site: str = "a", *, cpu: str = "8", memory: str = "32Gi", disk: bool = True,
             stable: bool = False, nic: int = 10_000, cluster: str | None = None) -> ProblemBuilder:
        """A node of ``cluster`` (default: ``<site>-c``, one per site)."""
        self.nodes.append(Node(name=name, site=site, cluster=cluster or f"{site}-c",
                               capacity=Resources.of(cpu=cpu, memory=memory), disk=disk, stable=stable,
                               nic_mbps=nic))
        return self

    def link(self, a: str, b: str, capacity: int, online: int = 0) -> ProblemBuilder:
        self.links.append(Link(a=a, b=b, capacity_mbps=capacity, online_used_mbps=online))
        return self

    def want(self, name: str, team: str = "t", *, count: int, cpu: str = "1", memory: str = "4Gi",
             **extra: Any) -> ProblemBuilder:
        self.classes.append(DemandClass(name=name, team=team, shape=Resources.of(cpu=cpu, memory=memory),
                                        count=count, **extra))
        return self

    def quota(self, team: str = "t", *, min: dict[str, str] | None = None,
              runtime: dict[str, str] | None = None, weight: int = 1) -> ProblemBuilder:
        data: dict[str, Any] = {"weight": weight}
        if min is not None:
            data["min"] = min
        if runtime is not None:
            data["runtime"] = runtime
        self.teams[team] = TeamQuota.model_validate(data)
        return self

    def lend(self, node: str, **amount: str) -> ProblemBuilder:
        self.lendable = {**(self.lendable or {}), node: Resources.of(**amount)}
        return self

    def build(self) -> PlacementProblem:
        sites = self.sites or [Site(name="a")]
        clusters = [Cluster(name=f"{s.name}-c", site=s.name) for s in sites] + self.clusters
        named = {c.name for c in clusters}
        for node in self.nodes:
            if node.cluster not in named:
                named.add(node.cluster)
                clusters.append(Cluster(name=node.cluster, site=node.site))
        inventory = Inventory(sites=tuple(sites), clusters=tuple(clusters), links=tuple(self.links),
                              nodes=tuple(self.nodes))
        return PlacementProblem(inventory=inventory, demand=Demand(classes=tuple(self.classes)),
                                quota=QuotaDocument(teams=self.teams), lendable=self.lendable)


def fleet() -> ProblemBuilder:
    """A new, empty problem builder."""
    return ProblemBuilder()
