"""Turning the chosen placements into the ``Plan`` that sinks read.

Per node: the lendable capacity, the capacity given to each sink (the sum of the shapes placed for YARN
NodeManagers and for Kubernetes batch pods; what stays unplaced is given to neither), the placements and the
labels. Per team: the runtime quota and what was placed, in total, per site and per cluster. Per link: the
offline read bandwidth the plan adds to online traffic.

Nodes and placements (tens of thousands per plan) are built with ``model_construct``: every value comes from
the validated problem or from exact integer arrays, and validating them again would cost a third of a 2 s
budget; equal values (a placement of one class and count, a sink amount) are built once and shared, which
frozen models allow. ``check_feasible`` re-derives every number of the plan from the problem in the tests.
"""

from __future__ import annotations

import numpy as np

from broker.model import (
    ZERO,
    LinkUse,
    NodePlan,
    Placement,
    Plan,
    Resources,
    Sink,
    SolveReport,
    TeamPlan,
    total,
)
from broker.model import Explanation as ExplanationModel
from broker.scheduler.compiled import Compiled, IntArray
from broker.scheduler.residual import Residual


def assemble(state: Residual, report: SolveReport, unmet: tuple[ExplanationModel, ...], *, now_s: float,
             version: int, interval_s: float) -> Plan:
    """The plan for ``state``'s placements, with ``report`` and ``unmet`` attached."""
    compiled = state.compiled
    return Plan(version=version, created_at_s=now_s, interval_s=interval_s,
                nodes=_nodes(compiled, state.counts),
                teams=_teams(compiled, state.counts), unmet=unmet, solve=report,
                links=_links(compiled, state.counts))


def _nodes(compiled: Compiled, counts: IntArray) -> tuple[NodePlan, ...]:
    """Per node its plan; equal placements and sink amounts are one shared (frozen) value."""
    problem = compiled.problem
    classes = problem.demand.classes
    yarn = np.array([c.sink is Sink.YARN for c in classes], dtype=bool)
    per_sink = {True: (counts[yarn].T @ compiled.shape[yarn]).tolist(),
                False: (counts[~yarn].T @ compiled.shape[~yarn]).tolist()}
    amounts: dict[tuple[int, ...], Resources] = {}
    shared: dict[tuple[int, int], Placement] = {}
    placements: list[list[Placement]] = [[] for _ in range(compiled.n_nodes)]
    ns, ks = np.nonzero(counts.T)
    for n, k, count in zip(ns.tolist(), ks.tolist(), counts[ks, ns].tolist(), strict=True):
        placement = shared.get((k, count))
        if placement is None:
            item = classes[k]
            placement = shared[(k, count)] = Placement.model_construct(
                demand_class=item.name, team=item.team, sink=item.sink, is_am=item.is_am, count=count)
        placements[n].append(placement)
    return tuple(
        NodePlan.model_construct(node=node.name, site=node.site, cluster=node.cluster,
                                 labels=tuple(sorted(node.labels)), lendable=problem.lendable_of(node),
                                 yarn=_shared(amounts, per_sink[True][n]),
                                 kubernetes=_shared(amounts, per_sink[False][n]),
                                 placements=tuple(placements[n]))
        for n, node in enumerate(problem.inventory.nodes)
    )


def _shared(amounts: dict[tuple[int, ...], Resources], row: list[int]) -> Resources:
    """``Resources`` of ``row``, built once per distinct row (most nodes share a handful)."""
    key = tuple(row)
    found = amounts.get(key)
    if found is None:
        found = amounts[key] = Resources.exact(*key) if any(key) else ZERO
    return found


def _teams(compiled: Compiled, counts: IntArray) -> tuple[TeamPlan, ...]:
    problem = compiled.problem
    nodes = problem.inventory.nodes
    clusters = sorted({n.cluster for n in nodes})
    position = {name: i for i, name in enumerate(clusters)}
    cluster_of = np.array([position[n.cluster] for n in nodes], dtype=np.int64).reshape(len(nodes))
    out = []
    for t, team in enumerate(compiled.team_names):
        mine = compiled.team_of == t
        per_node = counts[mine].T @ compiled.shape[mine]  # [N, D]
        by_site = _sum_by(per_node, compiled.node_site, compiled.site_names)
        by_cluster = _sum_by(per_node, cluster_of, tuple(clusters))
        running = total([c.shape * c.running for c in problem.demand.classes if c.team == team])
        out.append(TeamPlan(team=team, runtime_quota=problem.team_quota(team).runtime,
                            placed=_resources(per_node.sum(axis=0)), placed_by_site=by_site,
                            placed_by_cluster=by_cluster, running=running))
    return tuple(out)


def _links(compiled: Compiled, counts: IntArray) -> tuple[LinkUse, ...]:
    offline = _link_traffic(compiled, counts)
    return tuple(LinkUse(a=link.a, b=link.b, capacity_mbps=link.capacity_mbps,
                         online_used_mbps=link.online_used_mbps, offline_mbps=int(offline[i]))
                 for i, link in enumerate(compiled.problem.inventory.links))


def _link_traffic(compiled: Compiled, counts: IntArray) -> IntArray:
    """[L] Mbit/s each link carries for the plan's remote reads."""
    by_site = compiled.by_site(counts)
    traffic = np.zeros(len(compiled.link_ends), dtype=np.int64)
    remote = compiled.link_of >= 0
    np.add.at(traffic, compiled.link_of[remote], (by_site * compiled.read[:, None])[remote])
    return traffic


def _sum_by(per_node: IntArray, key: IntArray, names: tuple[str, ...]) -> dict[str, Resources]:
    out = {}
    for i, name in enumerate(names):
        amount = per_node[key == i].sum(axis=0)
        if amount.any():
            out[name] = _resources(amount)
    return out


def _resources(row: IntArray) -> Resources:
    return Resources.exact(*(int(x) for x in row)) if row.any() else ZERO


__all__ = ["assemble"]
