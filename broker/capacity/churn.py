"""Anti-churn: when a new estimate replaces the published one.

Every published change of a node's offline capacity costs a push to YARN and a node-status patch in Kubernetes, and
makes schedulers re-plan; publishing every 10-second wiggle would flood both. A ``ResyncRule`` says when a node's
published value follows the new estimate:

- the change is larger than ``min_change`` of the reference (the published value, or the node's capacity);
- or the published value is older than ``max_age_s``;
- or, with ``shrink_at_once``, the estimate is lower: giving back capacity is never delayed (the safety direction).

Koordinator's baseline resyncs on a 10% relative change or every 300 s, in either direction; the broker shrinks at
once and grows on a 5%-of-capacity change or every 60 s.

``resync`` is pure: it takes the previous publication and returns the next; the caller keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.capacity.estimate import Fleet, Lendable
from broker.capacity.history import FloatArray, IntArray


@dataclass(frozen=True)
class ResyncRule:
    """When a published value follows a new estimate (see the module docstring)."""

    min_change: float = 0.10
    relative_to_capacity: bool = False
    max_age_s: float = 300.0
    shrink_at_once: bool = False


KOORDINATOR_RESYNC = ResyncRule(min_change=0.10, relative_to_capacity=False, max_age_s=300.0, shrink_at_once=False)
BROKER_RESYNC = ResyncRule(min_change=0.05, relative_to_capacity=True, max_age_s=60.0, shrink_at_once=True)


@dataclass(frozen=True)
class Published:
    """What is published per node, and when each node's value last changed (per dimension)."""

    lendable: Lendable
    cpu_at_s: FloatArray
    memory_at_s: FloatArray


def _follow(
    rule: ResyncRule, old: IntArray, new: IntArray, capacity: IntArray, old_at: FloatArray, now_s: float
) -> tuple[IntArray, FloatArray]:
    reference = capacity if rule.relative_to_capacity else np.where(old > 0, old, capacity)
    changed = np.abs(new - old) > rule.min_change * reference
    expired = now_s - old_at >= rule.max_age_s
    update = changed | expired
    if rule.shrink_at_once:
        update |= new < old
    return np.where(update, new, old), np.where(update, now_s, old_at)


def resync(previous: Published | None, proposed: Lendable, fleet: Fleet, now_s: float, rule: ResyncRule) -> Published:
    """The publication that follows ``previous`` when ``proposed`` is the new estimate at ``now_s``."""
    if previous is None:
        at = np.full(len(fleet), now_s, dtype=np.float64)
        return Published(proposed, at, at.copy())
    old = previous.lendable
    cpu, cpu_at = _follow(rule, old.cpu_milli, proposed.cpu_milli, fleet.cpu_milli, previous.cpu_at_s, now_s)
    mem, mem_at = _follow(rule, old.memory_mib, proposed.memory_mib, fleet.memory_mib, previous.memory_at_s, now_s)
    # The stable part follows its total, and never exceeds it.
    stable_cpu = np.minimum(np.where(cpu_at == now_s, proposed.stable_cpu_milli, old.stable_cpu_milli), cpu)
    stable_mem = np.minimum(np.where(mem_at == now_s, proposed.stable_memory_mib, old.stable_memory_mib), mem)
    return Published(Lendable(cpu, mem, stable_cpu, stable_mem), cpu_at, mem_at)


__all__ = ["BROKER_RESYNC", "KOORDINATOR_RESYNC", "Published", "ResyncRule", "resync"]
