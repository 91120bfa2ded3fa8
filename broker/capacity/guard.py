"""The guard: which offline containers to kill when online load leaves a node short, and in what order.

When online usage plus offline usage on a node exceeds the node's safe limit, offline work must give back the
overflow at once. Killing is expensive (work is lost; an ApplicationMaster's death restarts its whole job), so the
guard kills as few containers as it can, in this order (the *kill score*, lowest first):

1. workers before ApplicationMasters / drivers: an AM is killed only when no worker is left on the node;
2. most recently started first: it has done the least work, so killing it loses the least;
3. then the larger memory, then the larger CPU: one big container frees what several small ones would.

It stops as soon as the overflow in both CPU and memory is covered. Pure: candidates in, kills out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Running:
    """``count`` identical running containers on one node (one placement), as the guard sees them."""

    key: int
    count: int
    cpu_milli: int
    memory_mib: int
    started_s: float
    is_am: bool


@dataclass(frozen=True, slots=True)
class Kill:
    """Kill ``count`` containers of the placement ``key``."""

    key: int
    count: int


def kill_score(item: Running) -> tuple[bool, float, int, int]:
    """Sort key: lower is killed first (see the module docstring)."""
    return (item.is_am, -item.started_s, -item.memory_mib, -item.cpu_milli)


def _count_to_cover(need: float, each: float) -> int:
    """How many containers freeing ``each`` cover ``need``; 0 when nothing is needed or they free none of it."""
    if need <= 0 or each <= 0:
        return 0
    return math.ceil(need / each)


def choose_victims(overflow_cpu_milli: int, overflow_memory_mib: int, running: list[Running],
                   cpu_usage: float = 1.0) -> list[Kill]:
    """The kills that cover the overflow, in kill-score order; ``cpu_usage`` is what a container really uses of the
    CPU it asked for (killing it frees that much). Returns every container when the overflow cannot be covered."""
    need_cpu = float(max(overflow_cpu_milli, 0))
    need_mem = float(max(overflow_memory_mib, 0))
    kills: list[Kill] = []
    for item in sorted(running, key=kill_score):
        if need_cpu <= 0 and need_mem <= 0:
            break
        wanted = min(item.count, max(_count_to_cover(need_cpu, item.cpu_milli * cpu_usage),
                                     _count_to_cover(need_mem, item.memory_mib)))
        if wanted:
            kills.append(Kill(item.key, wanted))
            need_cpu -= wanted * item.cpu_milli * cpu_usage
            need_mem -= wanted * item.memory_mib
    return kills


__all__ = ["Kill", "Running", "choose_victims", "kill_score"]
