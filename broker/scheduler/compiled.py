"""The problem as arrays: what the greedy baseline, the LP model and the packer compute on.

Compiling once per interval turns 20,000 pydantic nodes into a few numpy arrays, so that every later step is a
vectorised operation instead of a Python loop over nodes. Amounts stay exact integers (``int64``); only the LP
sees floats. Dimension order is ``Resources.FIELDS``: cpu_milli, memory_mib, disk_gib, network_mbps, gpu,
where the network column of a node is its NIC budget and that of a class is ``shape.network_mbps +
read_mbps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from broker.model import UNLIMITED
from broker.scheduler.problem import PlacementProblem, network_need

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

DIMS = 5
NETWORK = 3
SHARE_DIMS = (0, 1, 4)
"""Dimensions a container's *size* is measured in (cpu, memory, gpu): what teams are guaranteed and share."""

LOCAL = -1
"""``link_of`` entry: the class computes where its data is, or reads nothing; no link is used."""
UNREACHABLE = -2
"""``link_of`` entry: the class reads remote data and no link joins the two sites."""
NO_AM = -1
"""``am_of`` entry: the class names no ``am_class``."""
NO_CLUSTER = -1
"""``cluster_of`` entry: the class may run in any cluster; ``node_cluster`` entry: no class is tied to the node's
cluster."""


def admits(requires_disk: BoolArray, is_am: BoolArray, cluster: IntArray, disk: BoolArray, stable: BoolArray,
           node_cluster: IntArray) -> BoolArray:
    """Whether classes with these restrictions may run on nodes (or node groups) with these labels and cluster:
    ``disk`` for shuffle writers, ``stable`` for AMs and drivers, the class's own cluster when it is tied to one.
    Class arguments broadcast against node arguments. This is the one eligibility rule: ``Compiled.label_ok``
    (every pass, the explanations) and the LP's eligible pairs both read it."""
    ok: BoolArray = ((~requires_disk | disk) & (~is_am | stable)
                     & ((cluster == NO_CLUSTER) | (cluster == node_cluster)))
    return ok


@dataclass(frozen=True, eq=False)
class Compiled:
    """Arrays indexed by node ``n``, class ``k``, team ``t``, site ``s`` and link ``l``."""

    problem: PlacementProblem
    cap: IntArray  # [N, D] lendable capacity, network = NIC budget
    node_site: IntArray  # [N]
    node_disk: BoolArray  # [N]
    node_stable: BoolArray  # [N]
    node_cluster: IntArray  # [N] index of the node's cluster among those classes are tied to, or NO_CLUSTER
    need: IntArray  # [K, D] per container, network includes reads
    shape: IntArray  # [K, D] per container as quota counts it (shape only)
    count: IntArray  # [K]
    team_of: IntArray  # [K]
    requires_disk: BoolArray  # [K]
    is_am: BoolArray  # [K]
    am_of: IntArray  # [K] index of the class's am_class, or NO_AM
    cluster_of: IntArray  # [K] index of the cluster the class is tied to (as node_cluster), or NO_CLUSTER
    restriction_of: IntArray  # [K] row of ``admitted`` for the class's (disk, AM, cluster) restriction
    admitted: BoolArray  # [R, N] nodes each distinct restriction admits (read-only)
    read: IntArray  # [K] Mbit/s read per container
    priority: IntArray  # [K]
    link_of: IntArray  # [K, S] link used when class k computes at site s, or LOCAL / UNREACHABLE
    link_free: IntArray  # [L]
    quota: IntArray  # [T, D] runtime cap (UNLIMITED = none)
    guarantee: IntArray  # [T, D] min
    weight: IntArray  # [T]
    site_price: FloatArray  # [S] cost per core-hour
    site_names: tuple[str, ...]
    team_names: tuple[str, ...]
    link_ends: tuple[tuple[str, str], ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.cap.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of demand classes."""
        return int(self.need.shape[0])

    @property
    def n_teams(self) -> int:
        """Number of teams."""
        return len(self.team_names)

    def by_site(self, counts: IntArray) -> IntArray:
        """[K, S] containers per class and site, from per-node ``counts[k, n]``."""
        out = np.zeros((self.n_classes, len(self.site_names)), dtype=np.int64)
        for s in range(len(self.site_names)):
            out[:, s] = counts[:, self.node_site == s].sum(axis=1)
        return out

    @property
    def leads(self) -> BoolArray:
        """[K] AM classes that some class names as its ``am_class``: every pass places them first."""
        out: BoolArray = np.zeros(self.n_classes, dtype=bool)
        out[self.am_of[self.am_of != NO_AM]] = True
        return out

    def label_ok(self, k: int) -> BoolArray:
        """[N] nodes whose labels and cluster admit class ``k`` (``admits``), read-only. Classes share a few
        restrictions, so their masks are computed once per restriction in ``compile_problem``, not per call."""
        row: BoolArray = self.admitted[self.restriction_of[k]]
        return row

    def site_ok(self, k: int) -> BoolArray:
        """[N] nodes at sites from which class ``k`` can reach its data."""
        reachable: BoolArray = self.link_of[k] != UNREACHABLE
        return reachable[self.node_site]


def compile_problem(problem: PlacementProblem) -> Compiled:
    """Turn ``problem`` into arrays (exact integers, same order as the inputs)."""
    inventory = problem.inventory
    site_names = tuple(s.name for s in inventory.sites)
    site_index = {name: i for i, name in enumerate(site_names)}
    nodes = inventory.nodes
    cap = np.zeros((len(nodes), DIMS), dtype=np.int64)
    for i, node in enumerate(nodes):
        cap[i] = tuple(problem.lendable_of(node))
        cap[i, NETWORK] = problem.nic_budget_of(node)
    classes = problem.demand.classes
    team_names = problem.teams()
    team_index = {name: i for i, name in enumerate(team_names)}
    link_ends = tuple((link.a, link.b) for link in inventory.links)
    link_index = {frozenset(ends): i for i, ends in enumerate(link_ends)}
    link_of = np.full((len(classes), len(site_names)), LOCAL, dtype=np.int64)
    for k, item in enumerate(classes):
        if item.data_site is None or item.read_mbps == 0:
            continue
        for s, site in enumerate(site_names):
            if site != item.data_site:
                link_of[k, s] = link_index.get(frozenset((item.data_site, site)), UNREACHABLE)
    quotas = [problem.team_quota(t) for t in team_names]
    class_index = {c.name: k for k, c in enumerate(classes)}
    tied = {name: i for i, name in enumerate(sorted({c.cluster for c in classes if c.cluster is not None}))}
    node_cluster = np.array([tied.get(n.cluster, NO_CLUSTER) for n in nodes], dtype=np.int64)
    node_disk = np.array([n.disk for n in nodes], dtype=bool)
    node_stable = np.array([n.stable for n in nodes], dtype=bool)
    requires_disk = np.array([c.requires_disk for c in classes], dtype=bool)
    is_am = np.array([c.is_am for c in classes], dtype=bool)
    cluster_of = np.array([NO_CLUSTER if c.cluster is None else tied[c.cluster] for c in classes], dtype=np.int64)
    restrictions, restriction_of = np.unique(np.column_stack([requires_disk, is_am, cluster_of]).astype(np.int64),
                                             axis=0, return_inverse=True)
    admitted = admits(restrictions[:, 0, None] > 0, restrictions[:, 1, None] > 0, restrictions[:, 2, None],
                      node_disk[None, :], node_stable[None, :], node_cluster[None, :])
    admitted.flags.writeable = False
    return Compiled(
        problem=problem,
        cap=np.minimum(cap, UNLIMITED),
        node_site=np.array([site_index[n.site] for n in nodes], dtype=np.int64),
        node_disk=node_disk,
        node_stable=node_stable,
        node_cluster=node_cluster,
        need=np.array([(*tuple(c.shape)[:NETWORK], network_need(c), c.shape.gpu) for c in classes],
                      dtype=np.int64).reshape(len(classes), DIMS),
        shape=np.array([tuple(c.shape) for c in classes], dtype=np.int64).reshape(len(classes), DIMS),
        count=np.array([c.count for c in classes], dtype=np.int64),
        team_of=np.array([team_index[c.team] for c in classes], dtype=np.int64),
        requires_disk=requires_disk,
        is_am=is_am,
        am_of=np.array([NO_AM if c.am_class is None else class_index[c.am_class] for c in classes],
                       dtype=np.int64),
        cluster_of=cluster_of,
        restriction_of=restriction_of.reshape(len(classes)),
        admitted=admitted,
        read=np.array([c.read_mbps for c in classes], dtype=np.int64),
        priority=np.array([c.priority for c in classes], dtype=np.int64),
        link_of=link_of,
        link_free=np.array([link.free_mbps for link in inventory.links], dtype=np.int64),
        quota=np.array([tuple(q.runtime) for q in quotas], dtype=np.int64).reshape(len(team_names), DIMS),
        guarantee=np.array([tuple(q.min) for q in quotas], dtype=np.int64).reshape(len(team_names), DIMS),
        weight=np.array([q.weight for q in quotas], dtype=np.int64),
        site_price=np.array([s.cost_per_core_hour for s in inventory.sites], dtype=np.float64),
        site_names=site_names,
        team_names=team_names,
        link_ends=link_ends,
    )


__all__ = ["DIMS", "LOCAL", "NETWORK", "NO_AM", "NO_CLUSTER", "SHARE_DIMS", "UNREACHABLE", "Compiled", "admits",
           "compile_problem"]
