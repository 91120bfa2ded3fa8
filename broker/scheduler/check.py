"""An independent check of a plan against its problem, and an independent score.

Neither function uses the planner's arrays, groups or solver: they read the ``PlacementProblem`` and the
``Plan`` as a sink would and recompute every constraint in plain Python over the models, so a bug in the
compiled form or the packer cannot hide behind itself (SkyPilot's oracle and PyJobShop's cross-checks are the
model).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from broker.model import UNLIMITED, Plan, Resources, Sink, total
from broker.scheduler.compiled import compile_problem
from broker.scheduler.objective import Levels, levels_of, terms_of
from broker.scheduler.problem import PlacementProblem, network_need


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``kind`` (capacity, nic, label, cluster, link, quota, demand, am, unknown, sink), where
    and what."""

    kind: str
    where: str
    detail: str


def check_feasible(problem: PlacementProblem, plan: Plan) -> tuple[Violation, ...]:
    """Every rule ``plan`` breaks for ``problem``; empty when the plan is feasible."""
    out: list[Violation] = []
    nodes = {n.name: n for n in problem.inventory.nodes}
    classes = {c.name: c for c in problem.demand.classes}
    placed: dict[str, int] = defaultdict(int)
    team_use: dict[str, Resources] = defaultdict(Resources)
    link_use: dict[frozenset[str], int] = defaultdict(int)
    for node_plan in plan.nodes:
        node = nodes.get(node_plan.node)
        if node is None:
            out.append(Violation("unknown", node_plan.node, "node not in the inventory"))
            continue
        shapes = {Sink.YARN: Resources(), Sink.KUBERNETES: Resources()}
        nic = 0
        for p in node_plan.placements:
            item = classes.get(p.demand_class)
            if item is None or item.team != p.team or item.sink is not p.sink:
                out.append(Violation("unknown", node.name,
                                     f"placement {p.demand_class!r} matches no demand class"))
                continue
            if item.is_am and not node.stable:
                out.append(Violation("label", node.name, f"AM class {item.name} on an elastic node"))
            if item.requires_disk and not node.disk:
                out.append(Violation("label", node.name, f"class {item.name} needs disk, node is diskless"))
            if item.cluster is not None and item.cluster != node.cluster:
                out.append(Violation("cluster", node.name,
                                     f"class {item.name} runs only in cluster {item.cluster}, node is in "
                                     f"{node.cluster}"))
            shapes[item.sink] = shapes[item.sink] + item.shape * p.count
            nic += network_need(item) * p.count
            placed[item.name] += p.count
            team_use[item.team] = team_use[item.team] + item.shape * p.count
            if item.read_mbps and item.data_site is not None and item.data_site != node.site:
                pair = frozenset((item.data_site, node.site))
                if problem.inventory.link(item.data_site, node.site) is None:
                    out.append(Violation("link", node.name,
                                         f"{item.name} reads {item.data_site} with no link"))
                link_use[pair] += item.read_mbps * p.count
        lendable = problem.lendable_of(node)
        used = shapes[Sink.YARN] + shapes[Sink.KUBERNETES]
        for field in ("cpu_milli", "memory_mib", "disk_gib", "gpu"):
            if getattr(used, field) > getattr(lendable, field):
                out.append(Violation("capacity", node.name,
                                     f"{field} {getattr(used, field)} > lendable {getattr(lendable, field)}"))
        if nic > problem.nic_budget_of(node):
            out.append(Violation("nic", node.name,
                                 f"{nic} Mbit/s > NIC budget {problem.nic_budget_of(node)}"))
        if node_plan.yarn != shapes[Sink.YARN] or node_plan.kubernetes != shapes[Sink.KUBERNETES]:
            out.append(Violation("sink", node.name, "sink capacities differ from the placements"))
    for link in problem.inventory.links:
        use = link_use.get(frozenset((link.a, link.b)), 0)
        if use > link.free_mbps:
            out.append(Violation("link", f"{link.a}<->{link.b}", f"{use} Mbit/s > free {link.free_mbps}"))
    for team, amount in team_use.items():
        runtime = problem.team_quota(team).runtime
        for field in Resources.FIELDS:
            limit = getattr(runtime, field)
            if limit < UNLIMITED and getattr(amount, field) > limit:
                out.append(Violation("quota", team,
                                     f"{field} {getattr(amount, field)} > runtime quota {limit}"))
    for name, count in placed.items():
        if count > classes[name].count:
            out.append(Violation("demand", name, f"placed {count} > wanted {classes[name].count}"))
    for item in problem.demand.classes:
        am = classes[item.am_class] if item.am_class is not None else None
        if am is not None and am.count > 0 and placed[item.name] * am.count > placed[am.name] * item.count:
            out.append(Violation("am", item.name, f"placed {placed[item.name]} of {item.count} with only "
                                                  f"{placed[am.name]} of {am.count} AMs of {am.name}"))
    return tuple(out)


def score(problem: PlacementProblem, plan: Plan) -> Levels:
    """The objective's levels for ``plan``, recomputed from the plan's placements (see ``objective``)."""
    terms = terms_of(compile_problem(problem))
    index = {c.name: k for k, c in enumerate(problem.demand.classes)}
    sites = [s.name for s in problem.inventory.sites]
    teams = problem.teams()
    used = np.zeros(len(teams))
    bonus_weighted = 0.0
    cost = 0.0
    for node_plan in plan.nodes:
        s = sites.index(node_plan.site)
        for p in node_plan.placements:
            k = index[p.demand_class]
            used[teams.index(p.team)] += terms.share[k] * p.count
            bonus_weighted += terms.share[k] * terms.bonus[k] * p.count
            cost += terms.cost[k, s] * p.count
    return levels_of(used, bonus_weighted, cost, terms)


def placed_resources(plan: Plan) -> Resources:
    """Everything ``plan`` gives to either sink."""
    return total([n.yarn + n.kubernetes for n in plan.nodes])


__all__ = ["Violation", "check_feasible", "placed_resources", "score"]
