"""The ``broker`` policy's placement planner in the simulation: one ``broker.scheduler`` plan per interval.

Every ``plan_interval_s`` the policy takes a snapshot (``PlanInputs``) and asks the real planner where its queued
work should go:

- **capacity**: per node, what the estimator published minus what already runs there (running containers keep
  their place: delta planning); only nodes with room for the smallest queued container are passed on;
- **labels**: a node is ``stable`` for this plan only when it is a stable node *and* its stable lendable capacity
  (the part expected to survive the day's peak) still holds an AM, so the planner's AMs land where they are safe;
  ``disk`` is the node's own label;
- **links**: each site link's free bandwidth is its capacity minus online traffic minus what running workers
  already read over it; NIC budgets likewise;
- **demand**, grouped into classes by ``ClassKey`` (team, worker cpu, worker memory, needs disk): per key, one
  ``-run`` class for the missing workers of jobs whose AM runs, one ``-am`` class for the AMs of waiting jobs and
  one ``-new`` class for those jobs' workers, coupled to the AMs by ``am_class`` (executors are useless without
  their AM); workers read ``read_mbps`` from their team's ``data_site``;
- **quota**: per team, its runtime quota and guarantee net of what it runs, and its fair-share weight.

The plan's per-node placements become reservations (see ``engine``). ``PlanStats`` keeps what the report shows:
containers planned per team and class, placed fractions, solve times, the gap to the LP bound and the
explanations for unmet demand.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from broker.model import Demand, DemandClass, Inventory, Link, Node, Plan, Resources
from broker.scheduler import PlacementProblem, QuotaDocument, TeamQuota
from plugins.sim.scenario import TeamSpec

ClassKey = tuple[str, int, int, bool]
"""Jobs whose workers are interchangeable for placement: (team, worker cpu milli, worker memory MiB, needs disk)."""

PLAN_QUEUE_LIMIT = 2000
"""Waiting jobs (in arrival order) whose AMs one plan considers; the head of the queue already asks far more
than one interval frees, and a scheduler does not rescan an unbounded queue."""
TOP_UNMET = 10
"""Explanations kept in the report (the most frequent ones)."""


def class_name(key: ClassKey, kind: str) -> str:
    """The demand-class name of ``key`` and ``kind`` (``am``, ``new``, ``run``): readable in the report."""
    team, cpu, memory, disk = key
    return f"{team}-{cpu}m-{memory}Mi-{'disk' if disk else 'nodisk'}-{kind}"


@dataclass
class PlanInputs:
    """The policy's state at a planning step, as arrays over the fleet's nodes (inventory order)."""

    free_cpu: np.ndarray
    free_mem: np.ndarray
    nic_free: np.ndarray
    am_room: np.ndarray
    running_workers_wanted: dict[ClassKey, int]
    waiting_jobs: dict[ClassKey, tuple[int, int]]
    link_reads: dict[frozenset[str], int]
    quota: QuotaDocument


class ProblemBuilder:
    """Turns ``PlanInputs`` into a ``PlacementProblem``; built once per run (the fleet does not change)."""

    def __init__(self, inventory: Inventory, teams: tuple[TeamSpec, ...], am_shape: Resources) -> None:
        self.inventory = inventory
        self.teams = {t.name: t for t in teams}
        self.am_shape = am_shape
        # Both label variants of every stable node, made once: a plan picks one per node without validating again.
        self.as_stable = [node.model_copy(update={"stable": True}) if node.stable else node
                          for node in inventory.nodes]
        self.as_elastic = [node.model_copy(update={"stable": False}) if node.stable else node
                           for node in inventory.nodes]

    def build(self, inputs: PlanInputs) -> tuple[PlacementProblem, dict[str, tuple[ClassKey, str]]]:
        """The problem, and for each class name its key and kind (how to start what the plan places)."""
        classes: list[DemandClass] = []
        kinds: dict[str, tuple[ClassKey, str]] = {}
        keys = sorted(set(inputs.running_workers_wanted) | set(inputs.waiting_jobs))
        for key in keys:
            team, cpu, memory, disk = key
            spec = self.teams[team]
            worker = Resources.exact(cpu, memory)
            reads: dict[str, Any] = {"data_site": spec.data_site, "read_mbps": spec.read_mbps}
            running = inputs.running_workers_wanted.get(key, 0)
            if running:
                name = class_name(key, "run")
                classes.append(DemandClass(name=name, team=team, shape=worker, count=running, needs_disk=disk,
                                           **reads))
                kinds[name] = (key, "run")
            jobs, workers = inputs.waiting_jobs.get(key, (0, 0))
            if jobs:
                am = class_name(key, "am")
                classes.append(DemandClass(name=am, team=team, shape=self.am_shape, count=jobs, is_am=True))
                kinds[am] = (key, "am")
                if workers:
                    new = class_name(key, "new")
                    classes.append(DemandClass(name=new, team=team, shape=worker, count=workers, needs_disk=disk,
                                               am_class=am, **reads))
                    kinds[new] = (key, "new")
        smallest_cpu = min((c.shape.cpu_milli for c in classes), default=0)
        smallest_mem = min((c.shape.memory_mib for c in classes), default=0)
        room = (inputs.free_cpu >= smallest_cpu) & (inputs.free_mem >= smallest_mem)
        nodes: list[Node] = []
        lendable: dict[str, Resources] = {}
        index = np.flatnonzero(room)
        # Plain ints read in one go: indexing numpy arrays one element at a time costs more than the node itself.
        for i, stable, cpu, mem, nic in zip(index.tolist(), inputs.am_room[index].tolist(),
                                            inputs.free_cpu[index].tolist(), inputs.free_mem[index].tolist(),
                                            inputs.nic_free[index].tolist(), strict=True):
            node = self.as_stable[i] if stable else self.as_elastic[i]
            nodes.append(node)
            lendable[node.name] = Resources.exact(cpu, mem, 0, max(nic, 1))
        links = tuple(
            Link(a=link.a, b=link.b, capacity_mbps=link.capacity_mbps,
                 online_used_mbps=min(link.online_used_mbps + inputs.link_reads.get(frozenset((link.a, link.b)), 0),
                                      link.capacity_mbps))
            for link in self.inventory.links)
        inventory = self.inventory.model_copy(update={"nodes": tuple(nodes), "links": links})
        problem = PlacementProblem(inventory=inventory, demand=Demand(classes=tuple(classes)), quota=inputs.quota,
                                   lendable=lendable)
        return problem, kinds


def net_team_quota(runtime_room: tuple[int, int], min_left: tuple[int, int], weight: int) -> TeamQuota:
    """A team's planner quota net of what it runs: cap = what its runtime quota still lets start, guarantee =
    what of its effective min it does not use yet (cpu and memory; other dimensions uncapped)."""
    return TeamQuota.model_validate({
        "runtime": {"cpu_milli": runtime_room[0], "memory_mib": runtime_room[1]},
        "min": Resources.exact(min(min_left[0], runtime_room[0]), min(min_left[1], runtime_room[1])),
        "weight": max(1, min(weight, 1000)),
    })


@dataclass
class PlanStats:
    """What the planner decided over a run, for the report."""

    solves: int = 0
    solve_seconds: list[float] = field(default_factory=list)
    bound_ratio: list[float] = field(default_factory=list)
    placed_fraction: list[float] = field(default_factory=list)
    status: Counter[str] = field(default_factory=Counter)
    planned: dict[str, Counter[str]] = field(default_factory=dict)
    wanted: dict[str, Counter[str]] = field(default_factory=dict)
    started_reserved: Counter[str] = field(default_factory=Counter)
    started_fallback: Counter[str] = field(default_factory=Counter)
    clipped_ams: int = 0
    unmet_binding: Counter[str] = field(default_factory=Counter)
    unmet_classes: Counter[tuple[str, str]] = field(default_factory=Counter)
    would_help: dict[tuple[str, str], str] = field(default_factory=dict)
    last_unmet: list[dict[str, Any]] = field(default_factory=list)

    def add(self, problem: PlacementProblem, plan: Plan, kinds: dict[str, tuple[ClassKey, str]]) -> None:
        """Record one plan."""
        report = plan.solve
        self.solves += 1
        self.solve_seconds.append(report.solve_seconds)
        self.status[report.status.value] += 1
        if report.lp_bound > 0:
            self.bound_ratio.append(report.objective / report.lp_bound)
        if problem.demand.classes:
            self.placed_fraction.append(report.placed_fraction)
        for item in problem.demand.classes:
            self.wanted.setdefault(item.team, Counter())[kinds[item.name][1]] += item.count
        for node in plan.nodes:
            for p in node.placements:
                self.planned.setdefault(p.team, Counter())[kinds[p.demand_class][1]] += p.count
        self.last_unmet = []
        for e in plan.unmet:
            self.unmet_binding[e.binding.value] += 1
            self.unmet_classes[(e.demand_class, e.binding.value)] += 1
            self.would_help[(e.demand_class, e.binding.value)] = e.would_help
            self.last_unmet.append({"class": e.demand_class, "team": e.team, "wanted": e.wanted, "placed": e.placed,
                                    "binding": e.binding.value, "detail": e.detail, "would_help": e.would_help})

    def summary(self) -> dict[str, Any]:
        """The ``planner`` figures of ``--output-json`` (see ``docs/simulate.md``)."""
        times = sorted(self.solve_seconds)
        started = sum(self.started_reserved.values()) + sum(self.started_fallback.values())
        teams = sorted(set(self.wanted) | set(self.started_reserved) | set(self.started_fallback))
        return {
            "solves": self.solves,
            "solve_seconds_median": statistics.median(times) if times else 0.0,
            "solve_seconds_p95": times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0,
            "solve_seconds_max": times[-1] if times else 0.0,
            "status": dict(self.status),
            "objective_over_lp_bound_mean": statistics.fmean(self.bound_ratio) if self.bound_ratio else None,
            "objective_over_lp_bound_min": min(self.bound_ratio) if self.bound_ratio else None,
            "placed_fraction_mean": statistics.fmean(self.placed_fraction) if self.placed_fraction else 0.0,
            "containers_by_plan": sum(self.started_reserved.values()),
            "containers_by_fallback": sum(self.started_fallback.values()),
            "by_plan_fraction": sum(self.started_reserved.values()) / started if started else 0.0,
            "clipped_ams": self.clipped_ams,
            "teams": {
                team: {
                    "planned": dict(self.planned.get(team, Counter())),
                    "wanted": dict(self.wanted.get(team, Counter())),
                    "placed_fraction": _ratio(sum(self.planned.get(team, Counter()).values()),
                                              sum(self.wanted.get(team, Counter()).values())),
                    "started_by_plan": self.started_reserved[team],
                    "started_by_fallback": self.started_fallback[team],
                }
                for team in teams
            },
            "unmet_by_binding": dict(self.unmet_binding),
            "unmet_top": [
                {"class": name, "binding": binding, "plans": count, "would_help": self.would_help[(name, binding)]}
                for (name, binding), count in self.unmet_classes.most_common(TOP_UNMET)
            ],
            "unmet_last_plan": self.last_unmet,
        }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class LinkStats:
    """Offline reads over each site link, every step: average and peak against the link's free capacity."""

    links: tuple[Link, ...]
    total_mbps_steps: list[float] = field(default_factory=list)
    peak_mbps: list[int] = field(default_factory=list)
    steps: int = 0
    series_t_s: list[float] = field(default_factory=list)
    series_mbps: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.total_mbps_steps = [0.0] * len(self.links)
        self.peak_mbps = [0] * len(self.links)
        self.series_mbps = [[] for _ in self.links]

    def add(self, reads: dict[frozenset[str], int]) -> None:
        """One step's reads per site pair."""
        self.steps += 1
        for i, link in enumerate(self.links):
            use = reads.get(frozenset((link.a, link.b)), 0)
            self.total_mbps_steps[i] += use
            self.peak_mbps[i] = max(self.peak_mbps[i], use)

    def sample(self, t_s: float, reads: dict[frozenset[str], int]) -> None:
        """A point of the report's time series."""
        self.series_t_s.append(t_s)
        for i, link in enumerate(self.links):
            self.series_mbps[i].append(reads.get(frozenset((link.a, link.b)), 0))

    def summary(self) -> list[dict[str, Any]]:
        """Per link: capacity, online use, average and peak offline Mbit/s and their share of the free capacity."""
        out = []
        for i, link in enumerate(self.links):
            average = self.total_mbps_steps[i] / self.steps if self.steps else 0.0
            free = link.free_mbps
            out.append({"a": link.a, "b": link.b, "capacity_mbps": link.capacity_mbps,
                        "online_used_mbps": link.online_used_mbps, "offline_mbps_avg": average,
                        "offline_mbps_peak": self.peak_mbps[i],
                        "utilisation_avg": average / free if free else 0.0,
                        "utilisation_peak": self.peak_mbps[i] / free if free else 0.0})
        return out

    def series(self) -> dict[str, Any]:
        """The time series for ``summary.json`` and the link plot."""
        return {"t_s": self.series_t_s,
                **{f"{link.a}<->{link.b}": self.series_mbps[i] for i, link in enumerate(self.links)}}


__all__ = ["PLAN_QUEUE_LIMIT", "ClassKey", "LinkStats", "PlanInputs", "PlanStats", "ProblemBuilder", "class_name",
           "net_team_quota"]
