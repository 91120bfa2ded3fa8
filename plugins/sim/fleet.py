"""Build the simulated fleet (an ``Inventory``) from a scenario's sites and node groups."""

from __future__ import annotations

import numpy as np

from broker.model import Cluster, ClusterKind, Inventory, Link, Node, Site
from plugins.sim.scenario import Scenario


def build_inventory(scenario: Scenario) -> Inventory:
    """Nodes named ``<site>-n00001``..., one Kubernetes cluster per site (NodeManagers run in pods on it).

    Which nodes of a group are ``stable`` is drawn with the scenario's seed, so a scenario always builds the same
    fleet.
    """
    rng = np.random.default_rng(scenario.seed)
    sites: list[Site] = []
    clusters: list[Cluster] = []
    nodes: list[Node] = []
    for spec in scenario.sites:
        sites.append(Site(name=spec.name, kind=spec.kind, cost_per_core_hour=spec.cost_per_core_hour))
        cluster = f"{spec.name}-k8s"
        clusters.append(Cluster(name=cluster, kind=ClusterKind.KUBERNETES, site=spec.name))
        index = 0
        for group in spec.node_groups:
            count = max(1, round(group.count * scenario.node_scale))
            stable = rng.random(count) < group.stable_fraction
            for i in range(count):
                index += 1
                nodes.append(
                    Node(
                        name=f"{spec.name}-n{index:05d}",
                        site=spec.name,
                        cluster=cluster,
                        rack=f"{spec.name}-r{index // 40:03d}",
                        capacity=group.capacity,
                        reserved=group.reserved,
                        disk=group.disk,
                        stable=bool(stable[i]),
                        nic_mbps=group.nic_mbps,
                    )
                )
    links = [Link(a=link.a, b=link.b, capacity_mbps=link.capacity_mbps, online_used_mbps=link.online_used_mbps)
             for link in scenario.links]
    return Inventory(sites=tuple(sites), clusters=tuple(clusters), links=tuple(links), nodes=tuple(nodes))


def load_factors(scenario: Scenario) -> np.ndarray:
    """Per node, the online-load multiplier of its node group (in inventory order)."""
    out: list[float] = []
    for spec in scenario.sites:
        for group in spec.node_groups:
            out.extend([group.load_factor] * max(1, round(group.count * scenario.node_scale)))
    return np.array(out, dtype=np.float64)


__all__ = ["build_inventory", "load_factors"]
