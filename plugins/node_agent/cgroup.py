"""Offline containers from the cgroup v2 tree: which ones run on the node, and what each uses.

**Usage.** ``cpu.stat``'s ``usage_usec`` (cumulative CPU time, present in every v2 cgroup even without the cpu
controller) and ``memory.current`` (bytes charged, page cache included). A cgroup whose memory controller is not
enabled has no ``memory.current``; it reads as 0.

**Discovery.** Two kinds of offline containers, each under configurable roots:

- YARN NodeManager containers: directories named ``container_[e<epoch>_]<cluster-ts>_<app>_<attempt>_<n>`` directly
  under a YARN root (``/sys/fs/cgroup/hadoop-yarn`` with the NodeManager's default ``yarn.nodemanager.
  linux-container-executor.cgroups.hierarchy``). The AM is its attempt's first container (``<n> == 1``), which is
  how YARN numbers them.
- Kubernetes batch pods: pod directories directly under a pods root, in the systemd driver's naming
  (``kubepods-besteffort-pod<uid with _ for ->.slice`` under ``kubepods.slice/kubepods-besteffort.slice``) or the
  cgroupfs driver's (``pod<uid>`` under ``kubepods/besteffort``). The broker's batch pods ask only for extended
  resources, so Kubernetes puts them in the BestEffort class: every pod of that root is counted as offline, which
  also counts an online BestEffort pod, if any, as offline (point the root elsewhere when batch pods have their own
  slice). Whether a pod is a driver (an AM) cannot be seen in the cgroup tree: it is an AM when its UID is in
  ``am_pods``, a fixed set or a live view of the Kubernetes API (``plugins.node_agent.driver_pods.DriverPods``).

**Start time.** The cgroup directory's ``ctime``: the container manager creates the directory when it starts the
container. Reading the start time of the first process in ``cgroup.procs`` instead would need the host's PID
namespace (``hostPID``), which the agent does not ask for. kernfs stamps a directory's inode when it is first
looked up, not strictly when it was created, so ``Discovery`` keeps the first value it saw for each container: a
container that started before the agent may get a later time than its real start (it then looks younger to the
kill score), never one that moves around.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.model import Sink

CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Where cgroup v2 is mounted on a unified-hierarchy host."""
YARN_ROOTS = ("hadoop-yarn",)
"""Default YARN roots, relative to the cgroup root."""
POD_ROOTS = ("kubepods.slice/kubepods-besteffort.slice", "kubepods/besteffort")
"""Default batch-pod roots, relative to the cgroup root (systemd driver, cgroupfs driver)."""

_YARN = re.compile(r"^container_(?:e\d+_)?\d+_\d+_\d+_(\d+)$")
_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}"
_POD = re.compile(rf"^(?:kubepods(?:-[a-z]+)?-)?pod({_UID})(?:\.slice)?$")


@dataclass(frozen=True, slots=True)
class CgroupUsage:
    """Cumulative CPU time and current memory of one cgroup."""

    usage_usec: int
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class FoundContainer:
    """An offline container found in the cgroup tree (``container``: YARN container id or pod UID)."""

    sink: Sink
    container: str
    path: Path
    started_s: float
    is_am: bool


def read_usage(cgroup: Path) -> CgroupUsage | None:
    """Read ``cpu.stat`` and ``memory.current`` of ``cgroup``; ``None`` when the cgroup is gone (it ended)."""
    try:
        text = (cgroup / "cpu.stat").read_text()
    except FileNotFoundError:
        return None
    usage = 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            usage = int(value)
            break
    try:
        memory = int((cgroup / "memory.current").read_text().split()[0])
    except FileNotFoundError:
        if not cgroup.is_dir():
            return None
        memory = 0
    return CgroupUsage(usage_usec=usage, memory_bytes=memory)


def own_cgroup(proc_root: Path = Path("/proc"), pid: str = "self") -> str | None:
    """The cgroup v2 path of a process (the ``0::`` line of ``/proc/<pid>/cgroup``), ``None`` without one."""
    for line in (proc_root / pid / "cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def cgroup2_mount(mounts: Path = Path("/proc/self/mounts")) -> Path | None:
    """Where cgroup v2 is mounted (``/sys/fs/cgroup``, or ``/sys/fs/cgroup/unified`` on a hybrid host)."""
    for line in mounts.read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


class Discovery:
    """Finds the offline containers under the YARN and pod roots (see the module docstring).

    Stateful only in remembering each container's first-seen start time, for the reason the module docstring gives.
    """

    def __init__(self, yarn_roots: Sequence[Path] = (), pod_roots: Sequence[Path] = (),
                 am_pods: Container[str] = frozenset()) -> None:
        self.yarn_roots = tuple(yarn_roots)
        self.pod_roots = tuple(pod_roots)
        self.am_pods = am_pods
        """The driver pods' UIDs, asked at every scan (so a live view's changes show in the next sample)."""
        self._started: dict[Path, float] = {}

    @classmethod
    def under(cls, cgroup_root: Path, yarn: Iterable[str] = YARN_ROOTS, pods: Iterable[str] = POD_ROOTS,
              am_pods: Container[str] = frozenset()) -> Discovery:
        """Discovery of the roots ``yarn`` and ``pods``, relative to ``cgroup_root`` (absolute paths stay)."""
        return cls([cgroup_root / p for p in yarn], [cgroup_root / p for p in pods], am_pods)

    def scan(self) -> list[FoundContainer]:
        """Every offline container present now (roots that do not exist are skipped: not every node runs both)."""
        found: list[FoundContainer] = []
        for root in self.yarn_roots:
            for path in _children(root):
                match = _YARN.match(path.name)
                if match:
                    found.append(self._found(Sink.YARN, path.name, path, int(match.group(1)) == 1))
        for root in self.pod_roots:
            for path in _children(root):
                match = _POD.match(path.name)
                if match:
                    uid = match.group(1).replace("_", "-").lower()
                    found.append(self._found(Sink.KUBERNETES, uid, path, uid in self.am_pods))
        present = {item.path for item in found}
        for gone in [path for path in self._started if path not in present]:
            del self._started[gone]
        return found

    def _found(self, sink: Sink, container: str, path: Path, is_am: bool) -> FoundContainer:
        started = self._started.get(path)
        if started is None:
            try:
                started = path.stat().st_ctime
            except FileNotFoundError:
                started = 0.0
            self._started[path] = started
        return FoundContainer(sink, container, path, started, is_am)


def _children(root: Path) -> list[Path]:
    try:
        return [path for path in root.iterdir() if path.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


__all__ = [
    "CGROUP_ROOT",
    "POD_ROOTS",
    "YARN_ROOTS",
    "CgroupUsage",
    "Discovery",
    "FoundContainer",
    "cgroup2_mount",
    "own_cgroup",
    "read_usage",
]
