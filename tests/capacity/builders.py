"""Builders for capacity tests: fleets and histories that read like the situation they describe."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from broker.capacity import Fleet, UsageHistory


def fleet(cpu_milli: Sequence[int], memory_mib: Sequence[int], reserved_cpu_milli: Sequence[int] | None = None,
          reserved_memory_mib: Sequence[int] | None = None, stable: Sequence[bool] | None = None) -> Fleet:
    """A fleet from per-node capacities (reserves and stability default to none)."""
    n = len(cpu_milli)
    return Fleet(
        cpu_milli=np.array(cpu_milli, dtype=np.int64),
        memory_mib=np.array(memory_mib, dtype=np.int64),
        reserved_cpu_milli=np.array(reserved_cpu_milli or [0] * n, dtype=np.int64),
        reserved_memory_mib=np.array(reserved_memory_mib or [0] * n, dtype=np.int64),
        stable=np.array(stable or [False] * n, dtype=np.bool_),
    )


def one_node(cpu_milli: int = 10_000, memory_mib: int = 10_240, reserved_cpu_milli: int = 0,
             reserved_memory_mib: int = 0) -> Fleet:
    return fleet([cpu_milli], [memory_mib], [reserved_cpu_milli], [reserved_memory_mib])


def observe(history: UsageHistory, at_s: float, cpu_milli: Sequence[int], memory_mib: Sequence[int],
            seen: Sequence[bool] | None = None) -> None:
    history.observe(at_s, np.array(cpu_milli, dtype=np.int64), np.array(memory_mib, dtype=np.int64),
                    None if seen is None else np.array(seen, dtype=np.bool_))


def replay(history: UsageHistory, start_s: float, end_s: float, every_s: float,
           usage: Callable[[float], tuple[int, int]]) -> None:
    """Feed one node's usage ``usage(t) -> (cpu, memory)`` every ``every_s`` seconds over [start_s, end_s)."""
    for t in np.arange(start_s, end_s, every_s):
        cpu, mem = usage(float(t))
        observe(history, float(t), [cpu], [mem])
