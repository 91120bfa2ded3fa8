"""Where a cycle's inputs come from: the fleet, its online usage, and the offline demand.

A ``World`` gives the loop three things: the ``inventory`` (fixed for the life of the process: a fleet change is a
restart, which the leader election makes cheap), each node's online ``usage`` now, and the ``demand`` now. Two
worlds exist:

- ``SimulatedWorld``: the embedded scenario of ``broker simulate`` played against the wall clock (optionally
  faster), so that ``broker serve`` with no configuration shows the whole loop on a laptop. It back-fills a day of
  history at start, as a real deployment would read it from its metrics store, so the first plans are not blind.
- ``LiveWorld``: an inventory file, usage from the node agents (``AgentUsage``), and demand from a
  ``DemandSource``: a file that is re-read when it changes (``DemandFile``), or the YARN ResourceManagers
  (``yarn_demand.YarnDemandSource``), the Kubernetes pods (``kubernetes_demand.KubernetesDemandSource``), or both
  at once (``DemandSources``).

``demand`` is a coroutine, because the real source of demand is a set of peers read over the network at once;
the sources that compute or parse (the scenario, the file) do it in a worker thread, off the event loop. It is
given the quota policy's team bindings of the cycle, because work read from the outside (an app in a YARN queue)
belongs to a team only through them; the loop reads the policy once per cycle, so demand and quota agree on it.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from broker.capacity.history import BoolArray, IntArray, UsageHistory
from broker.errors import InputError
from broker.model import Demand, DemandClass, Inventory, Resources, TeamBinding, load
from broker.model.demand import Sink
from plugins.sim.fleet import build_inventory, load_factors
from plugins.sim.offline import Job
from plugins.sim.offline import generate as generate_jobs
from plugins.sim.online import OnlineUsage
from plugins.sim.online import generate as generate_online
from plugins.sim.scenario import Scenario


@dataclass(frozen=True, slots=True, eq=False)
class Usage:
    """Online usage of every inventory node (inventory order), and whether each node's figures are fresh."""

    cpu_milli: IntArray
    memory_mib: IntArray
    seen: BoolArray


class World(Protocol):
    """A cycle's inputs (see the module docstring)."""

    @property
    def inventory(self) -> Inventory: ...

    def usage(self, now_s: float) -> Usage:
        """Online usage now; a node without fresh figures is not ``seen`` (the estimator lends it nothing)."""
        ...

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        """Offline demand now (running and pending), as classes; ``bindings``: each team's YARN queues and
        namespaces, from the quota policy the cycle uses (empty without one)."""
        ...

    def backfill(self, history: UsageHistory, now_s: float) -> None:
        """Add whatever past usage the world knows to a fresh ``history`` (nothing, for most worlds)."""
        ...


class DemandSource(Protocol):
    """Where a ``LiveWorld``'s demand comes from (see ``World.demand``)."""

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand: ...


class SimulatedWorld:
    """The scenario's fleet, online load and jobs, replayed on the wall clock at ``speed`` (see module docstring).

    The scenario's span repeats forever. Demand at a moment is every job that would be running if it had started
    on arrival: its AM and its workers, one class per team and shape. Every other team (in the scenario's order)
    runs its jobs as Kubernetes batch pods (Spark on Kubernetes), the others on YARN, so that both sinks and the
    extender have work.
    """

    def __init__(self, scenario: Scenario, base: Path | None, started_s: float, speed: float = 1.0,
                 replay_from_s: float = 0.0) -> None:
        self.scenario = scenario
        self._from_s = replay_from_s
        self._inventory = build_inventory(scenario)
        self._started_s = started_s
        self._speed = speed
        self._online: OnlineUsage = generate_online(scenario, load_factors(scenario), base)
        fleet_cpu = sum(n.capacity.cpu_milli for n in self._inventory.nodes)
        self._jobs: list[Job] = generate_jobs(scenario, fleet_cpu, base)
        self._cpu = np.array([n.capacity.cpu_milli for n in self._inventory.nodes], dtype=np.float64)
        self._memory = np.array([n.capacity.memory_mib for n in self._inventory.nodes], dtype=np.float64)
        self._span_s = scenario.days * 86_400
        self._sink_of = {team.name: Sink.KUBERNETES if i % 2 else Sink.YARN for i, team in enumerate(scenario.teams)}

    @property
    def inventory(self) -> Inventory:
        return self._inventory

    def _sim_s(self, now_s: float) -> float:
        """Seconds into the measured period (after the warm-up) that ``now_s`` plays."""
        return self._from_s + (now_s - self._started_s) * self._speed

    def _step(self, sim_s: float) -> int:
        warmup = self.scenario.warmup_steps
        return warmup + int(sim_s // self.scenario.step_s) % self.scenario.steps

    def _usage_at_step(self, step: int) -> Usage:
        cpu = (self._online.cpu[step] * self._cpu).astype(np.int64)
        memory = (self._online.memory[step] * self._memory).astype(np.int64)
        return Usage(cpu, memory, self._online.seen[step].copy())

    def usage(self, now_s: float) -> Usage:
        return self._usage_at_step(self._step(self._sim_s(now_s)))

    def backfill(self, history: UsageHistory, now_s: float) -> None:
        """The warm-up day before the first step, ending just before ``now_s``, at the scenario's step."""
        step_s = self.scenario.step_s
        first = self._step(self._sim_s(now_s))
        for back in range(min(self.scenario.warmup_steps, int(86_400 // step_s)), 0, -1):
            usage = self._usage_at_step(max(first - back, 0))
            history.observe(now_s - back * step_s / self._speed, usage.cpu_milli, usage.memory_mib, usage.seen)

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        """The scenario's jobs running at ``now_s`` (its teams are bound by name: ``bindings`` adds nothing)."""
        return await asyncio.to_thread(self._demand_at, now_s)

    def _demand_at(self, now_s: float) -> Demand:
        at = self._sim_s(now_s) % self._span_s
        workers: Counter[tuple[str, int, int, bool]] = Counter()
        ams: Counter[str] = Counter()
        for job in self._jobs:
            if job.arrival_s > at:
                break
            if at < job.arrival_s + job.duration_s:
                workers[(job.team, job.cpu_milli, job.memory_mib, job.needs_disk)] += job.instances
                ams[job.team] += 1
        am_shape = self.scenario.am_shape
        sink = self._sink_of
        classes = [DemandClass(name=f"{team}-am", team=team, shape=am_shape, count=count, is_am=True,
                               sink=sink[team]) for team, count in sorted(ams.items())]
        classes += [
            DemandClass(name=f"{team}-{cpu}m-{memory}mi{'-disk' if disk else ''}", team=team,
                        shape=Resources.exact(cpu, memory), count=count, needs_disk=disk, am_class=f"{team}-am",
                        sink=sink[team])
            for (team, cpu, memory, disk), count in sorted(workers.items())
        ]
        return Demand(classes=tuple(classes))


class AgentSample(Protocol):
    """What ``AgentUsage`` reads of a node agent's last sample."""

    @property
    def sampled_at_s(self) -> float: ...

    @property
    def online_cpu_milli(self) -> int: ...

    @property
    def online_memory_mib(self) -> int: ...


class AgentUsage:
    """Online usage from the node agents' latest samples; a node whose last sample is older than ``stale_s`` (or
    that never reported) is not seen, so the estimator stops lending on it."""

    def __init__(self, inventory: Inventory, latest: Callable[[], Mapping[str, AgentSample]],
                 stale_s: float = 15.0) -> None:
        self._index = {node.name: i for i, node in enumerate(inventory.nodes)}
        self._latest = latest
        self._stale_s = stale_s

    def usage(self, now_s: float) -> Usage:
        n = len(self._index)
        cpu = np.zeros(n, dtype=np.int64)
        memory = np.zeros(n, dtype=np.int64)
        seen = np.zeros(n, dtype=np.bool_)
        for node, sample in self._latest().items():
            i = self._index.get(node)
            if i is None or now_s - sample.sampled_at_s > self._stale_s:
                continue
            cpu[i], memory[i], seen[i] = sample.online_cpu_milli, sample.online_memory_mib, True
        return Usage(cpu, memory, seen)


class DemandFile:
    """Demand from a file (``broker schema demand``), re-read when its modification time or size changes; a file
    that stops validating keeps the last good demand and the error is raised for the loop to report."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        self._demand = Demand()

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        """The file's classes (already in team terms: ``bindings`` adds nothing), parsed off the event loop."""
        return await asyncio.to_thread(self._read)

    def _read(self) -> Demand:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise InputError(str(self.path), f"cannot read demand file: {exc.strerror}") from None
        identity = (st.st_mtime_ns, st.st_size)
        if identity != self._identity:
            self._demand = load(Demand, self.path)
            self._identity = identity
        return self._demand


class DemandSources:
    """Several sources read at once, their classes side by side (``demand.kind: yarn+kubernetes``). Their class
    names cannot collide: YARN's start with ``yarn.``, and no Kubernetes class may (see
    ``kubernetes_demand.RESERVED_PREFIXES``)."""

    def __init__(self, *sources: DemandSource) -> None:
        self._sources = sources

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        parts = await asyncio.gather(*(source.demand(now_s, bindings) for source in self._sources))
        return Demand(classes=tuple(item for part in parts for item in part.classes))


class LiveWorld:
    """A real fleet: inventory file, agents' usage, demand from a file or read from the clusters."""

    def __init__(self, inventory: Inventory, usage: AgentUsage, demand: DemandSource) -> None:
        self._inventory = inventory
        self._usage = usage
        self._demand = demand

    @property
    def inventory(self) -> Inventory:
        return self._inventory

    def usage(self, now_s: float) -> Usage:
        return self._usage.usage(now_s)

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        return await self._demand.demand(now_s, bindings)

    def backfill(self, history: UsageHistory, now_s: float) -> None:
        """Nothing to add: the agents' figures start now (the estimator lends cautiously until it has a day)."""


__all__ = ["AgentSample", "AgentUsage", "DemandFile", "DemandSource", "DemandSources", "LiveWorld", "SimulatedWorld",
           "Usage", "World"]
