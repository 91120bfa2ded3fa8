"""The node's own figures from procfs: CPU time in ``/proc/stat`` and memory in ``/proc/meminfo``.

CPU use is a rate, so it needs two reads: between them, ``used = total - idle - iowait`` jiffies out of ``total``
jiffies across all CPUs, scaled to millicores (``cpus x 1000`` is the whole machine). ``steal`` counts as used: the
hypervisor took it, so online work could not have it either. ``guest`` time is already inside ``user`` and is not
added twice. Memory in use is ``MemTotal - MemAvailable``: what the kernel could not hand to a new process without
swapping, which counts reclaimable page cache as free.

Every reader takes the procfs root (``/proc`` by default) so that an agent in a pod reads the host's procfs mounted
elsewhere (``/host/proc``) and tests can point it at fixture files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from broker.errors import InputError

PROC = Path("/proc")
"""The default procfs root."""


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative jiffies of all CPUs at one instant, and how many CPUs there are."""

    used: int
    total: int
    cpus: int


@dataclass(frozen=True, slots=True)
class MemInfo:
    """Memory at one instant, in MiB."""

    total_mib: int
    available_mib: int

    @property
    def used_mib(self) -> int:
        """``MemTotal - MemAvailable``, never negative."""
        return max(self.total_mib - self.available_mib, 0)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None


def read_cpu_times(root: Path = PROC) -> CpuTimes:
    """Read ``<root>/stat``: the aggregate ``cpu`` line and the number of ``cpuN`` lines."""
    path = root / "stat"
    aggregate: list[int] | None = None
    cpus = 0
    for line in _read(path).splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            try:
                aggregate = [int(x) for x in rest.split()]
            except ValueError:
                raise InputError(str(path), f"cpu line is not numbers: {line!r}") from None
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
    if aggregate is None or len(aggregate) < 4:
        raise InputError(str(path), "no aggregate 'cpu' line with at least 4 fields")
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest is already counted in user.
    total = sum(aggregate[:8])
    idle = aggregate[3] + (aggregate[4] if len(aggregate) > 4 else 0)
    return CpuTimes(used=total - idle, total=total, cpus=cpus or os.cpu_count() or 1)


def cpu_milli_between(before: CpuTimes, after: CpuTimes) -> int:
    """Millicores used between two reads (0 when no time passed or the counters went backwards)."""
    elapsed = after.total - before.total
    used = after.used - before.used
    if elapsed <= 0 or used <= 0:
        return 0
    return min(round(used / elapsed * after.cpus * 1000), after.cpus * 1000)


def read_meminfo(root: Path = PROC) -> MemInfo:
    """Read ``MemTotal`` and ``MemAvailable`` from ``<root>/meminfo`` (kB) in MiB."""
    path = root / "meminfo"
    values: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            try:
                values[key] = int(rest.split()[0])
            except (ValueError, IndexError):
                raise InputError(str(path), f"{key} is not a number: {line!r}") from None
    for key in ("MemTotal", "MemAvailable"):
        if key not in values:
            raise InputError(str(path), f"no {key} line (kernels before 3.14 lack MemAvailable)")
    return MemInfo(total_mib=values["MemTotal"] // 1024, available_mib=values["MemAvailable"] // 1024)


__all__ = ["PROC", "CpuTimes", "MemInfo", "cpu_milli_between", "read_cpu_times", "read_meminfo"]
