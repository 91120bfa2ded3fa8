"""What a simulation measures, per policy. Field names are the keys of ``--output-json`` (see ``docs/simulate.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from broker.capacity import Fleet, Lendable


class WaitHistogram:
    """Waiting times of offline containers (arrival to start), bucketed by step, for the p95."""

    def __init__(self, step_s: int) -> None:
        self.step_s = step_s
        self.counts: dict[int, int] = {}

    def add(self, wait_s: float, count: int) -> None:
        bucket = max(0, int(wait_s // self.step_s))
        self.counts[bucket] = self.counts.get(bucket, 0) + count

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (upper edge of its bucket); 0 with no container."""
        total = sum(self.counts.values())
        if total == 0:
            return 0.0
        target = q * total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= target:
                return float((bucket + 1) * self.step_s)
        return float((max(self.counts) + 1) * self.step_s)


@dataclass
class PolicyResult:
    """Totals of one policy over the measured period."""

    policy: str
    node_steps: int = 0
    interfered_node_steps: int = 0
    used_cpu_milli_steps: float = 0.0
    capacity_cpu_milli_steps: float = 0.0
    used_mem_steps: float = 0.0
    capacity_mem_steps: float = 0.0
    lent_cpu_milli_s: float = 0.0
    oracle_cpu_milli_s: float = 0.0
    offline_containers: int = 0
    killed_containers: int = 0
    killed_ams: int = 0
    reclaimed_containers: int = 0
    teams: dict[str, Any] = field(default_factory=dict)
    team_series: dict[str, Any] = field(default_factory=dict)
    offline_wait_p95_s: float = 0.0
    series_t_s: list[float] = field(default_factory=list)
    series_util: list[float] = field(default_factory=list)
    series_site_util: dict[str, list[float]] = field(default_factory=dict)
    planner: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    link_series: dict[str, Any] = field(default_factory=dict)

    def add_usage(self, used_cpu: np.ndarray, used_mem: np.ndarray, fleet: Fleet, interfered: int) -> None:
        self.node_steps += len(fleet)
        self.interfered_node_steps += interfered
        self.used_cpu_milli_steps += float(np.minimum(used_cpu, fleet.cpu_milli).sum())
        self.capacity_cpu_milli_steps += float(fleet.cpu_milli.sum())
        self.used_mem_steps += float(np.minimum(used_mem, fleet.memory_mib).sum())
        self.capacity_mem_steps += float(fleet.memory_mib.sum())

    def add_lending(self, lendable: Lendable, oracle_cpu: np.ndarray, step_s: int) -> None:
        self.lent_cpu_milli_s += float(lendable.cpu_milli.sum()) * step_s
        self.oracle_cpu_milli_s += float(oracle_cpu.sum()) * step_s

    def add_series(self, t_s: float, used_cpu: np.ndarray, capacity: np.ndarray,
                   site_index: dict[str, np.ndarray]) -> None:
        self.series_t_s.append(t_s)
        self.series_util.append(float(np.minimum(used_cpu, capacity).sum() / capacity.sum()))
        for site, index in site_index.items():
            self.series_site_util.setdefault(site, []).append(
                float(np.minimum(used_cpu[index], capacity[index]).sum() / capacity[index].sum()))

    def summary(self) -> dict[str, Any]:
        """The figures of ``--output-json``'s ``policies.<name>``."""
        hours = 1000.0 * 3600.0
        return {
            "avg_cpu_util": self.used_cpu_milli_steps / self.capacity_cpu_milli_steps if self.node_steps else 0.0,
            "avg_mem_util": self.used_mem_steps / self.capacity_mem_steps if self.node_steps else 0.0,
            "lent_cpu_core_hours": self.lent_cpu_milli_s / hours,
            "oracle_lendable_cpu_core_hours": self.oracle_cpu_milli_s / hours,
            "interference_fraction": self.interfered_node_steps / self.node_steps if self.node_steps else 0.0,
            "offline_containers": self.offline_containers,
            "killed_containers": self.killed_containers,
            "killed_ams": self.killed_ams,
            "offline_wait_p95_s": self.offline_wait_p95_s,
            "reclaimed_containers": self.reclaimed_containers,
            **({"teams": self.teams} if self.teams else {}),
            **({"planner": self.planner, "links": self.links} if self.planner else {}),
        }


__all__ = ["PolicyResult", "WaitHistogram"]
