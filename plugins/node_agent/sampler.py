"""One node's sample: node usage from procfs, offline containers from cgroups, online usage as the difference.

CPU is a rate, so every figure is measured between this read and the previous one (``prime`` takes the first). A
container seen for the first time has no previous read: its CPU counts as 0 for that one sample, which attributes it
to online usage. That errs on the safe side: online usage looks higher, so the broker lends less, never more.

``online = node used - sum(offline containers)``, per dimension, never negative (a container's ``memory.current``
counts page cache that ``MemAvailable`` treats as free, so the difference can dip below zero).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from plugins.node_agent.cgroup import Discovery, read_usage
from plugins.node_agent.procfs import PROC, CpuTimes, cpu_milli_between, read_cpu_times, read_meminfo
from plugins.node_agent.wire import NodeSample, OfflineContainer

_MIB = 1024 * 1024


class Sampler:
    """Takes ``NodeSample``s of ``node``; ``seq`` counts them over the sampler's life (from 0)."""

    def __init__(self, node: str, proc_root: Path = PROC, discovery: Discovery | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.proc_root = proc_root
        self.discovery = discovery or Discovery()
        self._clock = clock
        self._monotonic = monotonic
        self._seq = 0
        self._cpu: CpuTimes | None = None
        self._at = 0.0
        self._container_usec: dict[Path, int] = {}

    def prime(self) -> None:
        """Take the first reads that the next ``sample`` measures from."""
        self._cpu = read_cpu_times(self.proc_root)
        self._at = self._monotonic()
        self._container_usec = {}
        for found in self.discovery.scan():
            usage = read_usage(found.path)
            if usage is not None:
                self._container_usec[found.path] = usage.usage_usec

    def sample(self) -> NodeSample:
        """The node's figures since the previous read (``prime`` first, or the first sample's CPU is 0)."""
        cpu = read_cpu_times(self.proc_root)
        memory = read_meminfo(self.proc_root)
        now = self._monotonic()
        elapsed_s = now - self._at
        node_cpu = cpu_milli_between(self._cpu, cpu) if self._cpu is not None else 0
        offline: list[OfflineContainer] = []
        seen: dict[Path, int] = {}
        for found in self.discovery.scan():
            usage = read_usage(found.path)
            if usage is None:
                continue
            usec = usage.usage_usec
            seen[found.path] = usec
            before = self._container_usec.get(found.path)
            container_cpu = 0
            if before is not None and elapsed_s > 0 and usec > before:
                container_cpu = round((usec - before) / elapsed_s / 1000)
            offline.append(OfflineContainer(
                sink=found.sink, container=found.container, cpu_milli=container_cpu,
                memory_mib=usage.memory_bytes // _MIB, started_s=found.started_s, is_am=found.is_am,
            ))
        self._cpu, self._at, self._container_usec = cpu, now, seen
        sample = NodeSample(
            node=self.node,
            seq=self._seq,
            sampled_at_s=self._clock(),
            capacity_cpu_milli=cpu.cpus * 1000,
            capacity_memory_mib=memory.total_mib,
            online_cpu_milli=max(node_cpu - sum(c.cpu_milli for c in offline), 0),
            online_memory_mib=max(memory.used_mib - sum(c.memory_mib for c in offline), 0),
            offline=tuple(offline),
        )
        self._seq += 1
        return sample


__all__ = ["Sampler"]
