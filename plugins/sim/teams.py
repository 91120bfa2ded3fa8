"""Elastic quota in the simulation: the ``broker`` policy shares its lendable pool between teams.

Every ``quota_interval_s`` the pool (the sum of what the estimator published) and each team's demand (what it runs
plus what it waits for) go through ``broker.quota.compute_runtime_quota``; until the next interval a team starts
containers only while what it runs stays within its runtime quota. When a team is short of what it is entitled to
and others run above theirs, ``broker.quota.plan_reclaim`` names the borrowers' containers to evict, after the
policy's grace period; evicted containers go back to their jobs' queues and are counted as *reclaimed*, apart from
the guard's kills.

The series kept for the report, per team and interval: runtime quota, use, effective min, guaranteed demand met,
borrowed and lent CPU, containers reclaimed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from broker.model import Resources
from broker.quota import (
    QuotaPolicy,
    RunningContainer,
    RuntimeQuota,
    compute_runtime_quota,
    plan_reclaim,
    track_over_quota,
)
from broker.quota.reclaim import ReclaimRequest


@dataclass
class TeamSeries:
    """One team's figures over time (CPU in cores)."""

    runtime: list[float] = field(default_factory=list)
    used: list[float] = field(default_factory=list)
    min: list[float] = field(default_factory=list)
    guaranteed_met: list[float] = field(default_factory=list)
    borrowed: list[float] = field(default_factory=list)
    lent: list[float] = field(default_factory=list)
    reclaimed: int = 0


@dataclass(frozen=True, slots=True)
class Holding:
    """Containers a team runs, as the reclaim sees them: ``count`` identical ones of placement ``key``."""

    key: int
    team: str
    count: int
    cpu_milli: int
    memory_mib: int
    started_s: float
    is_am: bool


class TeamQuotas:
    """The quota state of one policy run: runtime quota per team, what each runs, the reclaim clock."""

    def __init__(self, policy: QuotaPolicy, teams: Iterable[str], interval_s: float, grace_s: float) -> None:
        self.policy = policy
        self.teams = tuple(teams)
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.used_cpu = dict.fromkeys(self.teams, 0)
        self.used_mem = dict.fromkeys(self.teams, 0)
        self.cap_cpu = dict.fromkeys(self.teams, 0)
        self.cap_mem = dict.fromkeys(self.teams, 0)
        self.runtime: RuntimeQuota | None = None
        self.over_since: dict[str, float] = {}
        self.next_at_s = float("-inf")
        self.series_t_s: list[float] = []
        self.series = {team: TeamSeries() for team in self.teams}
        self.scaled_intervals = 0
        self.intervals = 0

    def charge(self, team: str, cpu_milli: int, memory_mib: int) -> None:
        """Containers of ``team`` started (positive) or stopped (negative)."""
        self.used_cpu[team] += cpu_milli
        self.used_mem[team] += memory_mib

    def room(self, team: str) -> tuple[int, int]:
        """CPU and memory ``team`` may still start this interval."""
        return (max(self.cap_cpu[team] - self.used_cpu[team], 0), max(self.cap_mem[team] - self.used_mem[team], 0))

    def due(self, now_s: float) -> bool:
        """True when a new interval starts."""
        return now_s >= self.next_at_s

    def recompute(self, now_s: float, pool: Resources, pending: dict[str, tuple[int, int]]) -> None:
        """Runtime quota for the interval starting at ``now_s``; ``pending`` is each team's waiting (cpu, memory)."""
        demand = {
            team: Resources.exact(self.used_cpu[team] + pending.get(team, (0, 0))[0],
                                  self.used_mem[team] + pending.get(team, (0, 0))[1])
            for team in self.teams
        }
        self.runtime = compute_runtime_quota(self.policy, pool, demand)
        self.intervals += 1
        self.scaled_intervals += bool(self.runtime.scaled)
        for team in self.teams:
            quota = self.runtime.groups[team]
            self.cap_cpu[team] = quota.runtime.cpu_milli
            self.cap_mem[team] = quota.runtime.memory_mib
        self.next_at_s = now_s + self.interval_s

    def record(self, t_s: float) -> None:
        """Append this interval's figures to the series."""
        if self.runtime is None:
            return
        self.series_t_s.append(t_s)
        for team in self.teams:
            quota = self.runtime.groups[team]
            s = self.series[team]
            guaranteed = min(quota.demand.cpu_milli, quota.min.cpu_milli)
            s.runtime.append(quota.runtime.cpu_milli / 1000)
            s.used.append(self.used_cpu[team] / 1000)
            s.min.append(quota.min.cpu_milli / 1000)
            s.guaranteed_met.append(min(self.used_cpu[team], guaranteed) / guaranteed if guaranteed else 1.0)
            s.borrowed.append(quota.borrowed.cpu_milli / 1000)
            s.lent.append(quota.lent.cpu_milli / 1000)

    def reclaim(self, now_s: float, holdings: Callable[[str], Iterator[Holding]]) -> dict[int, int]:
        """Containers to evict now, as {placement key: count}; empty unless an owner is short and a borrower is
        over its runtime quota. ``holdings(team)`` yields what a team runs in the order reclaim picks it (workers
        before AMs, the most recently started first); it is only asked for when needed, and only as far as
        needed."""
        if self.runtime is None:
            return {}
        usage = {team: Resources.exact(self.used_cpu[team], self.used_mem[team]) for team in self.teams}
        self.over_since = track_over_quota(self.over_since, self.runtime, usage, now_s)
        over = {t for t in self.teams if self.used_cpu[t] > self.cap_cpu[t] or self.used_mem[t] > self.cap_mem[t]}
        short = any(self.used_cpu[t] < self.cap_cpu[t] and self.runtime.groups[t].demand.cpu_milli > self.used_cpu[t]
                    for t in self.teams if t not in over)
        if not over or not short:
            return {}
        containers: list[RunningContainer] = []
        for h in self._candidates(over, holdings):
            shape = Resources.exact(h.cpu_milli, h.memory_mib)
            containers.extend(RunningContainer(id=f"{h.key}/{i}", group=h.team, resources=shape,
                                               started_at_s=h.started_s, is_am=h.is_am) for i in range(h.count))
        plan = plan_reclaim(ReclaimRequest(containers=containers, runtime=self.runtime, usage=usage, now_s=now_s,
                                           grace_s=self.grace_s, over_since_s=self.over_since))
        evict: dict[int, int] = {}
        for eviction in plan.evictions:
            key = int(eviction.container.split("/", 1)[0])
            evict[key] = evict.get(key, 0) + 1
            self.series[eviction.group].reclaimed += 1
        return evict

    def _candidates(self, over: set[str], holdings: Callable[[str], Iterator[Holding]]) -> list[Holding]:
        """Per borrower, only the containers reclaim could ever pick: in its order (workers before AMs, newest
        first; every simulated container has the same priority) the ones that cover the team's excess over its
        runtime quota. Reclaim never takes a borrower below that quota, so the rest cannot be chosen; leaving
        them out keeps each interval's reclaim to a few thousand candidates instead of every running container,
        and the rest are never even listed."""
        out: list[Holding] = []
        for team in over:
            excess_cpu = self.used_cpu[team] - self.cap_cpu[team]
            excess_mem = self.used_mem[team] - self.cap_mem[team]
            for h in holdings(team):
                if excess_cpu <= 0 and excess_mem <= 0:
                    break
                out.append(h)
                excess_cpu -= h.count * h.cpu_milli
                excess_mem -= h.count * h.memory_mib
        return out

    def summary(self, step_hours: float) -> dict[str, Any]:
        """Per team: guaranteed demand met, borrowed / lent core-hours, containers reclaimed."""
        out: dict[str, Any] = {}
        for team, s in self.series.items():
            out[team] = {
                "min_cores_avg": _mean(s.min),
                "runtime_cores_avg": _mean(s.runtime),
                "used_cores_avg": _mean(s.used),
                "guarantee_met": _mean(s.guaranteed_met) if s.guaranteed_met else 1.0,
                "borrowed_core_hours": sum(s.borrowed) * step_hours,
                "lent_core_hours": sum(s.lent) * step_hours,
                "reclaimed_containers": s.reclaimed,
            }
        return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


__all__ = ["Holding", "TeamQuotas", "TeamSeries"]
