"""The fast path's rule: when live online usage eats into what a node lent, shrink the node's offline capacity at once
and pick the containers to kill, without waiting for the control loop.

For one node, in each of CPU and memory (dimension ``d``), from a node agent's live sample::

    safe(d)   = floor(capacity(d) * threshold(d))          the node's safe limit (85% CPU, 90% memory by default)
    margin(d) = ceil(capacity(d) * margin_fraction)        head-room kept for the next second's rise
    room(d)   = max(safe(d) - online(d) - margin(d), 0)    what online usage leaves to offline work
    over      = room(d) < max(lent(d), offline used(d)) for some d
    new(d)    = min(lent(d), room(d))                      never above what was lent

``lent`` is the node's current offline capacity over both sinks (YARN + Kubernetes); the new total is split between
the sinks in proportion to what each had (rounded down, so the sum never exceeds ``new``). Dimensions other than CPU
and memory are left alone: agents do not measure them.

Victims: when offline *usage* exceeds ``room`` in some dimension, containers are killed until it fits, chosen by the
guard's kill score (``broker.capacity.guard``): workers first, newest first, larger first. An AM is killed only when
no worker is left on the node: if the workers cannot cover the overflow, every worker is a victim before the first
AM (killing an idle worker costs little; killing an AM restarts its whole job). A container that would free none of
what is short is never killed for nothing, except a worker that stands before a needed AM.

Usage above ``lent`` but within ``room`` (a CPU burst of throttled offline work, a container's page cache) is left
alone: it does not hurt online work, and CPU is compressible. The thresholds and the margin are the estimator's
(``ForecastConfig.cpu_threshold``, ``memory_threshold``, ``floor_fraction``). Online usage as an agent measures it
includes the system's own daemons, so no separate system reserve is subtracted. Pure: figures in, decision out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from broker.capacity.forecast import ForecastConfig
from broker.capacity.guard import Running, choose_victims
from broker.model import NodePlan, Resources, Sink

_DEFAULTS = ForecastConfig()


class OfflineUsage(Protocol):
    """One running offline container as a node agent reports it (the agents' ``OfflineContainer`` fits)."""

    @property
    def sink(self) -> Sink: ...

    @property
    def container(self) -> str: ...

    @property
    def cpu_milli(self) -> int: ...

    @property
    def memory_mib(self) -> int: ...

    @property
    def started_s(self) -> float: ...

    @property
    def is_am(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ShrinkConfig:
    """The safe limit's fractions of capacity and the margin kept below it (see the module docstring)."""

    cpu_threshold: float = _DEFAULTS.cpu_threshold
    memory_threshold: float = _DEFAULTS.memory_threshold
    margin_fraction: float = _DEFAULTS.floor_fraction

    def __post_init__(self) -> None:
        for name in ("cpu_threshold", "memory_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.margin_fraction < 1.0:
            raise ValueError(f"margin_fraction must be within [0, 1), got {self.margin_fraction}")

    @classmethod
    def from_forecast(cls, config: ForecastConfig) -> ShrinkConfig:
        """The fast path's limits from the estimator's, so that the loop and the fast path agree on "safe"."""
        return cls(config.cpu_threshold, config.memory_threshold, config.floor_fraction)

    def room(self, capacity: Resources, online: Resources) -> Resources:
        """CPU and memory that online usage leaves to offline work (``room`` in the module docstring)."""
        cpu = self._room(capacity.cpu_milli, self.cpu_threshold, online.cpu_milli)
        memory = self._room(capacity.memory_mib, self.memory_threshold, online.memory_mib)
        return Resources.exact(cpu_milli=cpu, memory_mib=memory)

    def _room(self, capacity: int, threshold: float, online: int) -> int:
        safe = math.floor(capacity * threshold)
        margin = math.ceil(capacity * self.margin_fraction)
        return max(safe - online - margin, 0)


@dataclass(frozen=True, slots=True)
class Victim:
    """A container the fast path kills: ``container`` is a YARN container id or a pod UID, as the agent saw it."""

    sink: Sink
    container: str


@dataclass(frozen=True, slots=True)
class Shrink:
    """The fast path's decision for one node.

    ``yarn`` / ``kubernetes`` are the node's new offline capacities (equal to the current ones when ``over`` is
    false); ``victims`` the containers to kill, in kill order; ``room`` what online usage leaves (CPU, memory).
    """

    over: bool
    yarn: Resources
    kubernetes: Resources
    victims: tuple[Victim, ...]
    room: Resources

    def applied_to(self, node: NodePlan) -> NodePlan:
        """``node`` with the new offline capacities (what the sinks' ``shrink`` is given)."""
        return node.model_copy(update={"yarn": self.yarn, "kubernetes": self.kubernetes})


def shrink_node(capacity: Resources, online: Resources, offline: Sequence[OfflineUsage], yarn: Resources,
                kubernetes: Resources, config: ShrinkConfig = ShrinkConfig()) -> Shrink:
    """Decide the fast path for one node (see the module docstring).

    ``capacity`` is the node's capacity, ``online`` its live online usage (CPU, memory), ``offline`` its running
    offline containers with their live usage, ``yarn`` / ``kubernetes`` its current offline capacity per sink.
    """
    room = config.room(capacity, online)
    lent = yarn + kubernetes
    used = Resources.exact(cpu_milli=sum(c.cpu_milli for c in offline), memory_mib=sum(c.memory_mib for c in offline))
    over = (room.cpu_milli < max(lent.cpu_milli, used.cpu_milli)
            or room.memory_mib < max(lent.memory_mib, used.memory_mib))
    if not over:
        return Shrink(False, yarn, kubernetes, (), room)
    new_cpu = min(lent.cpu_milli, room.cpu_milli)
    new_memory = min(lent.memory_mib, room.memory_mib)
    return Shrink(
        over=True,
        yarn=_share(yarn, lent, new_cpu, new_memory),
        kubernetes=_share(kubernetes, lent, new_cpu, new_memory),
        victims=_victims(offline, used.cpu_milli - room.cpu_milli, used.memory_mib - room.memory_mib),
        room=room,
    )


def _share(mine: Resources, lent: Resources, new_cpu: int, new_memory: int) -> Resources:
    """This sink's part of the new totals, in proportion to what it had, rounded down."""
    cpu = new_cpu * mine.cpu_milli // lent.cpu_milli if lent.cpu_milli else 0
    memory = new_memory * mine.memory_mib // lent.memory_mib if lent.memory_mib else 0
    return Resources.exact(cpu, memory, mine.disk_gib, mine.network_mbps, mine.gpu)


def _victims(offline: Sequence[OfflineUsage], over_cpu: int, over_memory: int) -> tuple[Victim, ...]:
    """Containers to kill so that offline usage fits the room: workers by the kill score, then (only when the
    workers cannot cover the overflow) every worker and the AMs by the kill score."""
    if over_cpu <= 0 and over_memory <= 0:
        return ()
    workers = [i for i, c in enumerate(offline) if not c.is_am]
    ams = [i for i, c in enumerate(offline) if c.is_am]
    chosen = _kills(offline, workers, over_cpu, over_memory)
    left_cpu = over_cpu - sum(offline[i].cpu_milli for i in chosen)
    left_memory = over_memory - sum(offline[i].memory_mib for i in chosen)
    needs_am = (left_cpu > 0 and any(offline[i].cpu_milli > 0 for i in ams)) or (
        left_memory > 0 and any(offline[i].memory_mib > 0 for i in ams))
    if needs_am:
        taken = set(chosen)
        spared = [i for i in workers if i not in taken]
        chosen += spared
        chosen += _kills(offline, ams, left_cpu - sum(offline[i].cpu_milli for i in spared),
                         left_memory - sum(offline[i].memory_mib for i in spared))
    return tuple(Victim(offline[i].sink, offline[i].container) for i in chosen)


def _kills(offline: Sequence[OfflineUsage], among: list[int], over_cpu: int, over_memory: int) -> list[int]:
    """Indexes of the containers ``choose_victims`` picks among ``among`` to cover the overflow, in kill order."""
    running = [Running(key=i, count=1, cpu_milli=offline[i].cpu_milli, memory_mib=offline[i].memory_mib,
                       started_s=offline[i].started_s, is_am=offline[i].is_am) for i in among]
    return [kill.key for kill in choose_victims(over_cpu, over_memory, running)]


__all__ = ["OfflineUsage", "Shrink", "ShrinkConfig", "Victim", "shrink_node"]
