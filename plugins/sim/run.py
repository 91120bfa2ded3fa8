"""One simulation run from a scenario: build the fleet, the online load and the offline demand, run every policy.

This is the wiring ``broker simulate`` calls; the CLI adds the progress display and the output files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.model import Inventory
from plugins.sim import offline, online
from plugins.sim.engine import ProgressHook, simulate
from plugins.sim.fleet import build_inventory, load_factors
from plugins.sim.results import PolicyResult
from plugins.sim.scenario import Scenario


@dataclass(frozen=True)
class SimulationRun:
    """A finished simulation: the scenario, the fleet it built and each policy's result."""

    scenario: Scenario
    inventory: Inventory
    jobs: int
    results: list[PolicyResult]

    def summary(self) -> dict[str, Any]:
        """The ``--output-json`` document."""
        return {
            "scenario": self.scenario.name,
            "nodes": len(self.inventory.nodes),
            "sites": [site.name for site in self.inventory.sites],
            "days": self.scenario.days,
            "step_s": self.scenario.step_s,
            "offline_jobs": self.jobs,
            "safe_limit": self.scenario.safe_limit.model_dump(),
            "policies": {r.policy: r.summary() for r in self.results},
        }


def run(scenario: Scenario, base: Path | None, progress: ProgressHook | None = None,
        workers: int = 1) -> SimulationRun:
    """Simulate ``scenario``; trace paths resolve against ``base`` (the scenario file's folder); ``workers``
    processes run the policies in parallel."""
    inventory = build_inventory(scenario)
    usage = online.generate(scenario, load_factors(scenario), base)
    fleet_cpu = sum(node.capacity.cpu_milli for node in inventory.nodes)
    jobs = offline.generate(scenario, fleet_cpu, base)
    results = simulate(scenario, inventory, usage, jobs, progress=progress, workers=workers)
    return SimulationRun(scenario=scenario, inventory=inventory, jobs=len(jobs), results=results)


__all__ = ["SimulationRun", "run"]
