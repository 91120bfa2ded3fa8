"""Reproducible synthetic instances for the benchmark and the tests.

``instance(nodes, teams, classes, sites, seed)`` builds a fleet, demand and quota in the shape the broker
meets in production, tuned so that every constraint family binds somewhere:

- sites ``site-0`` .. with the last one a cloud region (priced) when there are three or more; a full mesh of
  links, IDC lines 40 Gbit/s, cloud gateways 10 Gbit/s, half to two thirds used by online traffic;
- nodes from five machine types (40% old and diskless), a fifth of them ``stable``, lending 20-60% of their
  capacity in five steps (so identical nodes exist, as they do when a fleet is bought in batches), listed in a
  shuffled order;
- demand about 1.6 times the lendable pool: 15% of classes are small AMs/drivers, 60% of the others write
  shuffle data locally (a fifth of those through a remote shuffle service), three quarters read data at
  20-100 Mbit/s, 60% of it at the first IDC;
- guarantees (``min``) summing to half the pool, runtime caps 4 times the guarantee.
"""

from __future__ import annotations

import numpy as np

from broker.model import (
    Cluster,
    ClusterKind,
    Demand,
    DemandClass,
    Inventory,
    Link,
    Node,
    Resources,
    Sink,
    Site,
    SiteKind,
)
from broker.scheduler.inputs import QuotaDocument, TeamQuota
from broker.scheduler.problem import PlacementProblem

MACHINES = ((32, 128, 10_000, True), (48, 192, 25_000, True), (64, 256, 25_000, True),
            (96, 384, 25_000, True), (16, 64, 10_000, False))
"""(cores, GiB, NIC Mbit/s, has disks) per machine type; the last is old diskless hardware."""
SPARE_LEVELS = (0.2, 0.3, 0.4, 0.5, 0.6)
SHAPES = ((1, 4), (2, 8), (4, 16), (2, 4), (4, 8), (8, 32), (1, 2), (6, 24))
AM_SHAPES = ((1, 2), (1, 4), (2, 4))
READS = (0, 20, 50, 100)
DEMAND_OVER_POOL = 1.6
RUNTIME_OVER_MIN = 4
DATA_AT_FIRST_SITE = 0.6


def instance(*, nodes: int, teams: int, classes: int, sites: int = 4, seed: int = 0) -> PlacementProblem:
    """A reproducible problem of the given size (see the module docstring)."""
    rng = np.random.default_rng(seed)
    inventory, lendable = _fleet(rng, nodes, sites)
    pool_cpu = sum(r.cpu_milli for r in lendable.values())
    pool_mem = sum(r.memory_mib for r in lendable.values())
    demand = _demand(rng, teams, classes, [s.name for s in inventory.sites], pool_cpu, pool_mem)
    quota = _quota(rng, teams, pool_cpu, pool_mem)
    return PlacementProblem(inventory=inventory, demand=demand, quota=quota, lendable=lendable)


def _fleet(rng: np.random.Generator, n: int, n_sites: int) -> tuple[Inventory, dict[str, Resources]]:
    cloud = n_sites >= 3
    sites = [Site(name=f"site-{i}", kind=SiteKind.CLOUD if cloud and i == n_sites - 1 else SiteKind.IDC,
                  cost_per_core_hour=0.04 if cloud and i == n_sites - 1 else 0.0) for i in range(n_sites)]
    clusters = [Cluster(name=f"site-{i}-{kind.value}", kind=kind, site=f"site-{i}")
                for i in range(n_sites) for kind in (ClusterKind.KUBERNETES, ClusterKind.YARN)]
    links = []
    for i in range(n_sites):
        for j in range(i + 1, n_sites):
            to_cloud = sites[i].kind is SiteKind.CLOUD or sites[j].kind is SiteKind.CLOUD
            capacity = 10_000 if to_cloud else 40_000
            links.append(Link(a=f"site-{i}", b=f"site-{j}", capacity_mbps=capacity,
                              online_used_mbps=int(capacity * rng.uniform(0.5, 0.67))))
    weights = np.array([0.5 if s.kind is SiteKind.CLOUD else 1.0 for s in sites])
    site_of = rng.choice(n_sites, size=n, p=weights / weights.sum())
    machine_of = rng.choice(len(MACHINES), size=n, p=[0.2, 0.2, 0.1, 0.1, 0.4])
    stable = rng.random(n) < 0.2
    level_of = rng.choice(len(SPARE_LEVELS), size=n)
    nic_level = rng.choice([0.3, 0.5], size=n)
    nodes, lendable = [], {}
    for i in rng.permutation(n).tolist():
        cores, gib, nic, disk = MACHINES[machine_of[i]]
        s = int(site_of[i])
        name = f"node-{i:05d}"
        machine = Resources.exact(cpu_milli=cores * 1000, memory_mib=gib * 1024,
                                  disk_gib=2000 if disk else 0)
        cluster = f"site-{s}-{'yarn' if i % 2 else 'kubernetes'}"
        nodes.append(Node(name=name, site=f"site-{s}", cluster=cluster,
                          capacity=machine, disk=disk, stable=bool(stable[i]), nic_mbps=nic))
        level = SPARE_LEVELS[level_of[i]]
        lendable[name] = Resources.exact(cpu_milli=int(cores * 1000 * level),
                                         memory_mib=int(gib * 1024 * level),
                                         network_mbps=int(nic * nic_level[i]))
    inventory = Inventory(sites=tuple(sites), clusters=tuple(clusters), links=tuple(links),
                          nodes=tuple(nodes))
    return inventory, lendable


def _demand(rng: np.random.Generator, teams: int, n: int, sites: list[str], pool_cpu: int,
            pool_mem: int) -> Demand:
    idc = [s for s in sites if s != sites[-1]] if len(sites) >= 3 else sites
    is_am = rng.random(n) < 0.15
    raw = []
    for k in range(n):
        cores, gib = (AM_SHAPES if is_am[k] else SHAPES)[rng.integers(len(AM_SHAPES if is_am[k] else SHAPES))]
        raw.append((cores, gib, float(rng.uniform(0.2, 1.0))))
    total = sum(c * 1000 * w / pool_cpu + g * 1024 * w / pool_mem for c, g, w in raw) / 2
    scale = DEMAND_OVER_POOL / total
    classes = []
    for k, (cores, gib, w) in enumerate(raw):
        needs_disk = bool(not is_am[k] and rng.random() < 0.6)
        read = int(READS[rng.integers(len(READS))]) if not is_am[k] else 0
        classes.append(DemandClass(
            name=f"class-{k:04d}", team=f"team-{int(rng.integers(teams)):03d}",
            shape=Resources.exact(cpu_milli=cores * 1000, memory_mib=gib * 1024),
            count=max(int(w * scale), 1), needs_disk=needs_disk,
            remote_shuffle=bool(needs_disk and rng.random() < 0.2), is_am=bool(is_am[k]),
            data_site=_data_site(rng, idc) if read else None,
            read_mbps=read,
            priority=int(rng.integers(3)), sink=Sink.YARN if rng.random() < 0.7 else Sink.KUBERNETES))
    return Demand(classes=tuple(classes))


def _data_site(rng: np.random.Generator, idc: list[str]) -> str:
    """Most data lives at the first IDC (the big HDFS cluster), the rest anywhere in the IDCs."""
    return idc[0] if rng.random() < DATA_AT_FIRST_SITE else idc[int(rng.integers(len(idc)))]


def _quota(rng: np.random.Generator, teams: int, pool_cpu: int, pool_mem: int) -> QuotaDocument:
    weight = rng.integers(1, 4, size=teams)
    share = 0.5 * weight / weight.sum()
    out = {}
    for t in range(teams):
        guaranteed = Resources.exact(cpu_milli=int(pool_cpu * share[t]), memory_mib=int(pool_mem * share[t]))
        out[f"team-{t:03d}"] = TeamQuota(min=guaranteed, runtime=guaranteed.scaled(RUNTIME_OVER_MIN, 1),
                                         weight=int(weight[t]))
    return QuotaDocument(teams=out)


__all__ = ["instance"]
