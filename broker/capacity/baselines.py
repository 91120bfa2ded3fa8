"""The estimators users run today, kept exactly as they know them, so that the broker is compared fairly.

- ``OnlineOnly``: no lending at all (the fleet as it runs without co-location).
- ``StaticFraction``: a fixed fraction of every node's capacity, whatever the online load (what a static YARN
  NodeManager size on an online node amounts to).
- ``UsageThreshold``: Koordinator's ``usage-threshold`` batch resource model::

      batch = capacity - capacity * (1 - reclaimThreshold) - system used - sum(online used)
            = capacity * reclaimThreshold - system - online used

  with ``reclaimThreshold`` 60% for CPU and 65% for memory, and the node's batch resource reset to zero when its
  metrics are older than 15 minutes (Koordinator's degrade rule). Its resync (10% change or 300 s) is the
  ``KOORDINATOR_RESYNC`` rule in ``churn``, applied by the caller like every other rule. It reacts to the latest
  sample only: no forecast, no margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.capacity.estimate import Fleet, Lendable, clamp_nonnegative
from broker.capacity.history import UsageHistory


@dataclass(frozen=True)
class OnlineOnly:
    """Lends nothing."""

    name: str = "online-only"

    def estimate(self, fleet: Fleet, history: UsageHistory, now_s: float) -> Lendable:
        return Lendable.zeros(len(fleet))


@dataclass(frozen=True)
class StaticFraction:
    """Lends ``fraction`` of every node's capacity (minus its reserve), blind to online load."""

    fraction: float = 0.3
    name: str = "static"

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("static fraction must be within [0, 1]")

    def estimate(self, fleet: Fleet, history: UsageHistory, now_s: float) -> Lendable:
        cpu = clamp_nonnegative(fleet.cpu_milli * self.fraction - fleet.reserved_cpu_milli)
        mem = clamp_nonnegative(fleet.memory_mib * self.fraction - fleet.reserved_memory_mib)
        return Lendable(cpu, mem, cpu, mem)


@dataclass(frozen=True)
class UsageThreshold:
    """Koordinator's usage-threshold model (see the module docstring)."""

    cpu_threshold: float = 0.60
    memory_threshold: float = 0.65
    degrade_after_s: float = 15 * 60
    name: str = "usage-threshold"

    def estimate(self, fleet: Fleet, history: UsageHistory, now_s: float) -> Lendable:
        fresh = history.age_s(now_s) <= self.degrade_after_s
        cpu = clamp_nonnegative(
            fleet.cpu_milli * self.cpu_threshold - fleet.reserved_cpu_milli - history.last[0]
        )
        mem = clamp_nonnegative(
            fleet.memory_mib * self.memory_threshold - fleet.reserved_memory_mib - history.last[1]
        )
        cpu = np.where(fresh, cpu, 0)
        mem = np.where(fresh, mem, 0)
        # Koordinator has no notion of stable capacity: everything it lends may be reclaimed.
        zero = np.zeros(len(fleet), dtype=np.int64)
        return Lendable(cpu, mem, zero, zero)


__all__ = ["OnlineOnly", "StaticFraction", "UsageThreshold"]
