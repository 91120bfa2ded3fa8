"""What every spare-capacity estimator receives and returns.

An estimator is a pure decision over a fleet: given each node's capacity and reserve and the online-usage history,
how much CPU and memory may offline work be given for the next planning interval. It is vectorised over the fleet
(numpy arrays in a fixed node order) because the loop estimates 10,000 nodes every 10 seconds.

``Lendable`` splits what may be lent into a *stable* part, expected to stay lendable through the coming day's peak
(where ApplicationMasters and drivers may go), and the rest, which may be reclaimed when online load rises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from broker.capacity.history import BoolArray, IntArray, UsageHistory
from broker.model import Node


@dataclass(frozen=True)
class Fleet:
    """Capacity and system reserve per node, in milli-CPU and MiB, in the node order of the usage history."""

    cpu_milli: IntArray
    memory_mib: IntArray
    reserved_cpu_milli: IntArray
    reserved_memory_mib: IntArray
    stable: BoolArray

    @classmethod
    def of(cls, nodes: list[Node] | tuple[Node, ...]) -> Fleet:
        """Build from inventory nodes."""
        return cls(
            cpu_milli=np.array([n.capacity.cpu_milli for n in nodes], dtype=np.int64),
            memory_mib=np.array([n.capacity.memory_mib for n in nodes], dtype=np.int64),
            reserved_cpu_milli=np.array([n.reserved.cpu_milli for n in nodes], dtype=np.int64),
            reserved_memory_mib=np.array([n.reserved.memory_mib for n in nodes], dtype=np.int64),
            stable=np.array([n.stable for n in nodes], dtype=np.bool_),
        )

    def __len__(self) -> int:
        return len(self.cpu_milli)

    def capacity(self, dim: int) -> IntArray:
        """Capacity in dimension ``dim`` (0 cpu, 1 memory)."""
        return self.cpu_milli if dim == 0 else self.memory_mib

    def reserved(self, dim: int) -> IntArray:
        """System reserve in dimension ``dim`` (0 cpu, 1 memory)."""
        return self.reserved_cpu_milli if dim == 0 else self.reserved_memory_mib


@dataclass(frozen=True)
class Lendable:
    """Per node, what offline work may use now (``cpu_milli``, ``memory_mib``) and the part of it expected to stay
    lendable through the next day (``stable_*``, always <= the totals)."""

    cpu_milli: IntArray
    memory_mib: IntArray
    stable_cpu_milli: IntArray
    stable_memory_mib: IntArray

    @classmethod
    def zeros(cls, n: int) -> Lendable:
        """Nothing lendable anywhere."""
        z = np.zeros(n, dtype=np.int64)
        return cls(z, z, z, z)

    def dim(self, dim: int) -> IntArray:
        """Total lendable in dimension ``dim`` (0 cpu, 1 memory)."""
        return self.cpu_milli if dim == 0 else self.memory_mib


class Estimator(Protocol):
    """A spare-capacity estimator. ``name`` identifies it on the command line and in reports."""

    @property
    def name(self) -> str: ...

    def estimate(self, fleet: Fleet, history: UsageHistory, now_s: float) -> Lendable:
        """Lendable capacity per node for the interval starting at ``now_s``, from history up to ``now_s``."""
        ...


def clamp_nonnegative(values: np.typing.ArrayLike) -> IntArray:
    """Round down to whole units and clip at zero: an estimator never lends a fraction it does not have."""
    return np.maximum(np.floor(np.asarray(values, dtype=np.float64)), 0).astype(np.int64)


__all__ = ["Estimator", "Fleet", "Lendable", "clamp_nonnegative"]
