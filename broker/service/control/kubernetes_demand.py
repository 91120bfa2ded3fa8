"""Offline demand read from the pods of every Kubernetes cluster (``demand.kind: kubernetes`` or
``yarn+kubernetes``).

**Which pods.** Each cluster of ``kubernetes_clusters`` has its unfinished pods followed by list + watch
(``plugins.kubernetes.pods.ClusterPods``, started by the first cycle: a follower holds no watch). Each cycle takes the
offline ones, read exactly as the extender reads a pod (``read_pod``: a pod requesting or limiting
``<domain>/batch-cpu`` or ``<domain>/batch-memory`` in some container or init container; its size is its
effective request of them), and counts each one as

- pending: not bound to a node (``spec.nodeName`` empty) and not being deleted;
- running: bound, in phase ``Pending`` or ``Running``;
- nothing otherwise (finished, ``Unknown``, or unbound and being deleted).

**Which team.** The extender's own rule (``team_of``) on the namespace bindings of this cluster in the policy the
cycle uses, through the tables the extender builds from a plan carrying them: the namespace's team, the
``<domain>/team`` label choosing among the teams of a shared namespace. Pods of no team are not planned (the
extender would refuse them anyway): they are counted per namespace (``broker_kubernetes_demand_unmapped_pods``)
and logged when that changes.

**Which class.** Pods become ``DemandClass`` entries of sink ``kubernetes`` tied to their cluster (``cluster`` =
the clusters file's name, which the inventory, the node sink and the extender share), ``count`` = pending +
running and ``running`` = running, named so that the plan's placements admit exactly these pods:

- a pod labelled ``<domain>/class`` is in the class of that name, which is what the extender looks up for it
  (placements of its team and that class). The class is sized for every pod of it: the largest request of each
  resource, an AM class if any of its pods is an AM or driver, a disk class if any needs disk. The label must be
  a class name and may not start with ``yarn.`` or ``k8s.`` (the broker's own names). Class names are
  fleet-wide, so a label carried by pods of several teams or clusters names the class of the first (by cluster,
  then team); the others' pods are left out (``class_conflict``) and logged;
- a pod without that label is in ``k8s.<cluster>.<team>.<am|worker>.<cpu>m.<memory>Mi[.disk]``: the extender
  admits such a pod on a node where the plan placed any class of its team and role, so the name only has to be
  unique, and all pods of one team, role, size and disk need share it.

**How many.** At most ``max_classes`` classes per cluster (``MAX_CLASSES``). Pods of one team, role, size and disk
share a class, so the count follows the variety of sizes, not the number of pods: 100,000 executors of 2,000
Spark jobs are a few thousand classes at most, usually far fewer. Beyond the limit, the sizes of the unlabelled
classes are rounded up, as little as brings the count within it (``ROUNDINGS``: by at most an eighth of each
resource, so that near sizes merge, 4,300 MiB and 4,500 MiB both becoming 4,608 MiB; else a quarter; else a
half); if that is still too many, the classes with the fewest pods are left out (``class_limit``). The planner's
time grows with the classes (5,000 nodes: 0.6 s at 200 classes, 3.6 s at 1,000), which is what bounds the
limit. Left-out pods of a team are counted per reason (``broker_kubernetes_demand_unplanned_pods``) and logged.

**When a cluster cannot be read.** A cycle reads the local copy, never the API server, except that it waits up to
``demand.timeout_s`` for a cluster's first list to succeed or fail. While the copy does not follow the API server
(a list or watch failed and no list succeeded since), the cluster's last good demand stands in until it is
``demand.max_age_s`` old, then the cluster contributes nothing (``demand_reads``): ``/readyz`` shows each
cluster's state, ``broker_kubernetes_demand_age_seconds`` its age, ``broker_kubernetes_demand_failures_total``
counts failed lists and watches.

**Cost.** The copy holds only the fields of each pod that this module and ``read_pod`` read
(``plugins.kubernetes.pods.READ_FIELDS``, about 3.5 KB a pod instead of 18 KB as sent; the tests fail when a
field read here or by the extender is not kept), so 100,000 pods fit the broker pod's memory limit. A pod is read
once per resourceVersion and the result kept, and pods alike in all the extender reads of them (a job's executors)
are mapped to a team and class once per cycle, so a cycle over 100,000 unchanged pods is a walk over a dictionary
(about 0.3 s), done off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubernetes import client

from broker.errors import InputError
from broker.model import NAME_PATTERN, Demand, DemandClass, Plan, Resources, Sink, TeamBinding, TeamPlan
from broker.service.control.demand_reads import ClusterStatus, LastGood
from broker.service.extender.conventions import Conventions
from broker.service.extender.filtering import PodKind, kind_of, team_of
from broker.service.extender.pod import PodFacts, read_pod
from broker.service.extender.tables import PlanTables, assemble
from broker.service.observability.metrics import ServiceMetrics, UnplannedPods
from plugins.kubernetes import ClustersConfig, api_clients
from plugins.kubernetes.pods import ClusterPods

log = logging.getLogger(__name__)

MAX_CLASSES = 1_000
"""Demand classes one cluster's pods may make (see the module docstring)."""

RESERVED_PREFIXES = ("yarn.", "k8s.")
"""Class names the broker makes itself (YARN's classes, unlabelled pods' classes): no class label may start so,
which keeps Kubernetes and YARN classes apart in ``demand.kind: yarn+kubernetes``."""

ROUNDINGS = (3, 2, 1)
"""Past the class limit, unlabelled pods' sizes are rounded up to this many bits below their leading one, the
finest that brings the count within the limit first: by at most 1/8, 1/4, then 1/2 of each resource."""

_CLASS_NAME = re.compile(NAME_PATTERN)
_MAX_NOTES = 10


class PodState(StrEnum):
    """What an offline pod counts as (see the module docstring)."""

    PENDING = "pending"
    RUNNING = "running"


def pod_state(pod: Mapping[str, Any]) -> PodState | None:
    """Pending, running or neither, for a pod as the API server sends it."""
    meta, spec, status = (_mapping(pod.get(part)) for part in ("metadata", "spec", "status"))
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        return None
    if not spec.get("nodeName"):
        return None if meta.get("deletionTimestamp") else PodState.PENDING
    return PodState.RUNNING if phase in ("Pending", "Running") else None


def class_name(cluster: str, team: str, is_am: bool, needs_disk: bool, shape: Resources) -> str:
    """The class of unlabelled pods of one team, role, size and disk need in ``cluster``."""
    role = "am" if is_am else "worker"
    return (f"k8s.{cluster}.{team}.{role}.{shape.cpu_milli}m.{shape.memory_mib}Mi"
            + (".disk" if needs_disk else ""))


def rounded_up(amount: int, bits: int) -> int:
    """``amount`` rounded up to ``bits`` bits below its leading one, i.e. by at most ``1/2**bits`` of it
    (``bits=3``: 4300 -> 4608, 4096 -> 4096)."""
    step = 1 << max(amount.bit_length() - bits - 1, 0)
    return -(-amount // step) * step


def is_class_label(label: str) -> bool:
    """True when ``label`` may name a demand class (see ``RESERVED_PREFIXES``)."""
    return _CLASS_NAME.match(label) is not None and not label.startswith(RESERVED_PREFIXES)


@dataclass(frozen=True)
class ClusterDemand:
    """One cluster's pods as demand: the classes, and what was left out and why."""

    classes: tuple[DemandClass, ...]
    unmapped: Mapping[str, int]
    """Namespace -> offline pods of no team there."""
    unplanned: Mapping[UnplannedPods, int]
    notes: tuple[str, ...]
    """Why pods are left out, one line per cause, for the log."""


_Alike = tuple[str, str | None, str | None, bool, bool, int, int]
"""What ``team_of`` and ``kind_of`` read of a pod: namespace, team label, class label, AM, disk need, size (cpu,
memory). Pods alike in these map alike, so a cycle maps each such group once (a job's executors are one)."""


@dataclass(frozen=True, slots=True)
class _Seen:
    """One version of a pod, read: ``facts`` for an offline pod (``None`` for an online or unreadable one)."""

    version: str
    facts: PodFacts | None
    state: PodState | None
    alike: _Alike | None = None
    problem: str | None = None


@dataclass
class _Group:
    """Pods of one class, and what the class must be for each of them to fit where the plan places it."""

    team: str
    is_am: bool = False
    needs_disk: bool = False
    cpu_milli: int = 0
    memory_mib: int = 0
    pending: int = 0
    running: int = 0

    @property
    def pods(self) -> int:
        return self.pending + self.running

    def add(self, kind: PodKind, state: PodState, pods: int) -> None:
        self.is_am, self.needs_disk = self.is_am or kind.is_am, self.needs_disk or kind.needs_disk
        self.cpu_milli = max(self.cpu_milli, kind.shape.cpu_milli)
        self.memory_mib = max(self.memory_mib, kind.shape.memory_mib)
        if state is PodState.RUNNING:
            self.running += pods
        else:
            self.pending += pods

    def merge(self, other: _Group) -> None:
        self.pending, self.running = self.pending + other.pending, self.running + other.running

    @property
    def shape(self) -> Resources:
        return Resources.exact(cpu_milli=self.cpu_milli, memory_mib=self.memory_mib)

    def demand_class(self, name: str, cluster: str) -> DemandClass:
        return DemandClass(name=name, team=self.team, shape=self.shape, count=self.pods, running=self.running,
                           is_am=self.is_am, needs_disk=self.needs_disk, sink=Sink.KUBERNETES, cluster=cluster)


_Exact = dict[tuple[str, bool, bool, int, int], _Group]
"""Unlabelled pods by team, AM, disk need and size."""


class PodReader:
    """One cluster's pods as demand classes (see the module docstring); remembers each pod's reading per
    resourceVersion between calls."""

    def __init__(self, cluster: str, names: Conventions, max_classes: int = MAX_CLASSES) -> None:
        if max_classes < 1:
            raise InputError("max_classes", "must be 1 or more")
        self.cluster = cluster
        self._names = names
        self._max_classes = max_classes
        self._seen: dict[str, _Seen] = {}

    def read(self, pods: Mapping[str, dict[str, Any]], bindings: Mapping[str, TeamBinding]) -> ClusterDemand:
        """The demand of ``pods`` (by ``namespace/name``, as the API server sends them) under ``bindings``."""
        self._seen = seen = {key: self._see(key, pod) for key, pod in pods.items()}
        tally: Counter[tuple[_Alike, PodState]] = Counter()
        sample: dict[_Alike, PodFacts] = {}
        problems: Counter[str] = Counter()
        for item in seen.values():
            if item.problem is not None:
                problems[item.problem] += 1
            elif item.facts is not None and item.state is not None and item.alike is not None:
                tally[item.alike, item.state] += 1
                if item.alike not in sample:
                    sample[item.alike] = item.facts
        tables = self._namespaces(bindings)
        unmapped: Counter[str] = Counter()
        unplanned: Counter[UnplannedPods] = Counter()
        labelled: dict[str, dict[str, _Group]] = {}
        exact: _Exact = {}
        bad_labels: Counter[str] = Counter()
        for (alike, state), count in tally.items():
            facts = sample[alike]
            team, _ = team_of(facts, tables, self._names.team_label)
            if team is None:
                unmapped[facts.namespace] += count
                continue
            kind = kind_of(facts, team)
            label = kind.demand_class
            if not any(kind.amounts):
                problems[f"pod {facts.namespace}/{facts.name} asks for 0 of {self._names.batch_cpu} and "
                         f"{self._names.batch_memory}"] += count
            elif label is None:
                key = (team, kind.is_am, kind.needs_disk, kind.shape.cpu_milli, kind.shape.memory_mib)
                exact.setdefault(key, _Group(team)).add(kind, state, count)
            elif is_class_label(label):
                labelled.setdefault(label, {}).setdefault(team, _Group(team)).add(kind, state, count)
            else:
                bad_labels[label] += count
        notes: list[str] = []
        if problems:
            total = unplanned[UnplannedPods.INVALID] = sum(problems.values())
            notes.append(f"{total} offline pod(s) cannot be planned for: {next(iter(problems))}"
                         + (f" (and {total - 1} more)" if total > 1 else ""))
        for label, count in sorted(bad_labels.items()):
            unplanned[UnplannedPods.CLASS_LABEL] += count
            notes.append(f"{count} pod(s) labelled {self._names.class_label}={label}: not a class name, or one "
                         f"starting with {' or '.join(RESERVED_PREFIXES)} (the broker's own)")
        for namespace, count in sorted(unmapped.items()):
            notes.append(f"{count} offline pod(s) in namespace {namespace}, of no team: bind the namespace to a team "
                         "in the quota policy (or label the pods with their team when it is shared)")
        groups = self._labelled(labelled, unplanned, notes) | self._unlabelled(exact, len(labelled), notes)
        if len(groups) > self._max_classes:
            kept = set(sorted(groups, key=lambda name: (-groups[name].pods, name))[:self._max_classes])
            left = [group.pods for name, group in groups.items() if name not in kept]
            unplanned[UnplannedPods.CLASS_LIMIT] += sum(left)
            notes.append(f"{len(left)} class(es) with {sum(left)} pod(s) left out: more than {self._max_classes} "
                         "classes even with sizes rounded up (the classes with the fewest pods go first)")
            groups = {name: groups[name] for name in kept}
        classes = tuple(groups[name].demand_class(name, self.cluster) for name in sorted(groups))
        return ClusterDemand(classes, dict(unmapped), dict(unplanned), tuple(notes))

    def _see(self, key: str, pod: dict[str, Any]) -> _Seen:
        """``pod`` read, or as read before when its resourceVersion has not changed."""
        version = str(_mapping(pod.get("metadata")).get("resourceVersion") or "")
        known = self._seen.get(key)
        if known is not None and version and known.version == version:
            return known
        try:
            facts = read_pod(pod, self._names, where=f"pod {key}")
        except InputError as exc:
            return _Seen(version, None, None, problem=str(exc))
        if not facts.offline:
            return _Seen(version, None, None)
        alike = (facts.namespace, facts.team_label, facts.demand_class, facts.is_am, facts.needs_disk,
                 facts.shape.cpu_milli, facts.shape.memory_mib)
        return _Seen(version, facts, pod_state(pod), alike)

    def _namespaces(self, bindings: Mapping[str, TeamBinding]) -> PlanTables:
        """The extender's tables of a plan carrying ``bindings``, for this cluster: ``team_of`` reads their
        namespace index, so pods map to the teams the extender will map them to."""
        plan = Plan(teams=tuple(TeamPlan(team=team, binding=binding) for team, binding in sorted(bindings.items())))
        return assemble(plan, {}, self.cluster)

    def _labelled(self, labelled: Mapping[str, Mapping[str, _Group]], unplanned: Counter[UnplannedPods],
                  notes: list[str]) -> dict[str, _Group]:
        """One class per label, the first team's (by name) when several teams carry it."""
        out: dict[str, _Group] = {}
        for label, by_team in labelled.items():
            first, *others = sorted(by_team)
            out[label] = by_team[first]
            for team in others:
                unplanned[UnplannedPods.CLASS_CONFLICT] += by_team[team].pods
                notes.append(f"{by_team[team].pods} pod(s) of team {team} labelled {self._names.class_label}={label}: "
                             f"the class is team {first}'s (class names are fleet-wide)")
        return out

    def _unlabelled(self, exact: _Exact, labelled: int, notes: list[str]) -> dict[str, _Group]:
        """One class per team, role, disk need and size; past the class limit (counting ``labelled`` classes),
        sizes rounded up as little as brings the count within it (``ROUNDINGS``)."""
        out, used = self._classes(exact, None), None
        for bits in ROUNDINGS:
            if labelled + len(out) <= self._max_classes:
                break
            out, used = self._classes(exact, bits), bits
        if used is not None:
            notes.append(f"sizes of unlabelled pods rounded up by at most 1/{2**used} to stay within "
                         f"{self._max_classes} classes")
        return out

    def _classes(self, exact: _Exact, bits: int | None) -> dict[str, _Group]:
        """The classes of ``exact``, their sizes rounded up to ``bits`` (``rounded_up``) unless ``None``."""
        out: dict[str, _Group] = {}
        for (team, is_am, needs_disk, cpu, memory), group in exact.items():
            if bits is not None:
                cpu, memory = rounded_up(cpu, bits), rounded_up(memory, bits)
            size = Resources.exact(cpu_milli=cpu, memory_mib=memory)
            merged = out.setdefault(class_name(self.cluster, team, is_am, needs_disk, size),
                                    _Group(team, is_am, needs_disk, cpu, memory))
            merged.merge(group)
        return out


@dataclass
class _Cluster:
    """One cluster's pods, their reader and its reads (``demand_reads.LastGood``, on the source's clock)."""

    name: str
    pods: ClusterPods
    reader: PodReader
    reads: LastGood[ClusterDemand] = field(init=False)
    told_error: str | None = None
    told_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.reads = LastGood(self.name, f"Kubernetes cluster {self.name}", "its API server answers")


class KubernetesDemandSource:
    """The pod demand of every configured Kubernetes cluster (see the module docstring).

    ``apis``: each cluster's ``ApiClient`` by name (closed by ``aclose``); ``clock`` is monotonic seconds (it ages
    the last good demand); ``watch_timeout_s``, ``retry_s`` and ``retry_max_s`` are the pod watches'
    (``ClusterPods``).
    """

    def __init__(self, apis: Mapping[str, client.ApiClient], metrics: ServiceMetrics, *, names: Conventions,
                 timeout_s: float, max_age_s: float, max_classes: int = MAX_CLASSES, watch_timeout_s: int = 300,
                 retry_s: float = 1.0, retry_max_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clusters = [
            _Cluster(name, ClusterPods(api, f"kube-apiserver {name}", request_timeout_s=timeout_s,
                                       watch_timeout_s=watch_timeout_s, retry_s=retry_s, retry_max_s=retry_max_s,
                                       on_error=functools.partial(_failed, metrics, name)),
                     PodReader(name, names, max_classes))
            for name, api in sorted(apis.items())
        ]
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._max_age_s = max_age_s
        self._clock = clock

    @classmethod
    def from_config(cls, clusters: ClustersConfig, metrics: ServiceMetrics, *, names: Conventions, timeout_s: float,
                    max_age_s: float) -> KubernetesDemandSource:
        """One pod watch per cluster of the clusters file (``InputError`` naming the field when one cannot be
        reached as configured)."""
        return cls(api_clients(clusters), metrics, names=names, timeout_s=timeout_s, max_age_s=max_age_s)

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(cluster.name for cluster in self._clusters)

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        """Every cluster's pending and running pods as classes; a cluster whose copy does not follow its API
        server contributes its last good demand while that is not older than the max age, then nothing."""
        for cluster in self._clusters:
            cluster.pods.start()
        waiting = [c.pods for c in self._clusters if not c.pods.listed and c.pods.error is None]
        await asyncio.gather(*(asyncio.to_thread(pods.wait_first_list, self._timeout_s) for pods in waiting))
        reads = await asyncio.to_thread(self._read_all, bindings)
        now = self._clock()
        classes: list[DemandClass] = []
        taken: set[str] = set()
        ages: dict[str, float] = {}
        pending: Counter[str] = Counter({team: 0 for team in bindings})
        unmapped: dict[tuple[str, str], int] = {}
        unplanned: dict[tuple[str, UnplannedPods], int] = {}
        for cluster, read in zip(self._clusters, reads, strict=True):
            if isinstance(read, str):
                cluster.reads.failed(read)
            else:
                cluster.reads.succeeded(read, now)
            self._report_error(cluster, None if isinstance(read, ClusterDemand) else read)
            last = cluster.reads.in_use(now, self._max_age_s)
            ages[cluster.name] = cluster.reads.age_s(now)
            if last is None:
                continue
            left = Counter(last.unplanned)
            notes = list(last.notes)
            for item in last.classes:
                if item.name in taken:  # a class label of an earlier cluster (names are fleet-wide)
                    left[UnplannedPods.CLASS_CONFLICT] += item.count
                    notes.append(f"{item.count} pod(s) of class {item.name}: the class is an earlier cluster's "
                                 "(class names are fleet-wide)")
                    continue
                taken.add(item.name)
                classes.append(item)
                pending[item.team] += item.count - item.running
            unmapped.update({(cluster.name, namespace): n for namespace, n in last.unmapped.items()})
            unplanned.update({(cluster.name, reason): left[reason] for reason in UnplannedPods})
            self._report_notes(cluster, tuple(notes))
        self._metrics.kubernetes_demand_used(ages, pending, unmapped, unplanned)
        return Demand(classes=tuple(classes))

    def status(self) -> dict[str, ClusterStatus]:
        """Each cluster's state as of the last cycle, for ``/readyz``."""
        now = self._clock()
        return {cluster.name: cluster.reads.status(now) for cluster in self._clusters}

    async def aclose(self) -> None:
        """Stop every watch and close the clients."""
        await asyncio.gather(*(asyncio.to_thread(cluster.pods.close) for cluster in self._clusters))

    def _read_all(self, bindings: Mapping[str, TeamBinding]) -> list[ClusterDemand | str]:
        """Each cluster's demand from its local copy, or why the copy is not good (run off the event loop)."""
        out: list[ClusterDemand | str] = []
        for cluster in self._clusters:
            error = cluster.pods.error
            if not cluster.pods.listed:
                out.append(f"pods not listed yet: {error}" if error is not None
                           else f"pods not listed within {self._timeout_s:g} s (demand.timeout_s)")
            elif error is not None:
                out.append(str(error))
            else:
                out.append(cluster.reader.read(cluster.pods.snapshot(), bindings))
        return out

    @staticmethod
    def _report_error(cluster: _Cluster, error: str | None) -> None:
        """Log why a cluster's pods are not followed, when that changes (its recovery is ``LastGood``'s)."""
        if error == cluster.told_error:
            return
        cluster.told_error = error
        if error is not None:
            log.warning("pods of Kubernetes cluster %s not followed: %s", cluster.name, error,
                        extra={"cluster": cluster.name})

    @staticmethod
    def _report_notes(cluster: _Cluster, notes: tuple[str, ...]) -> None:
        """Log why pods are left out of the demand, when that changes."""
        if notes == cluster.told_notes:
            return
        cluster.told_notes = notes
        if notes:
            more = f"; and {len(notes) - _MAX_NOTES} more" if len(notes) > _MAX_NOTES else ""
            log.warning("Kubernetes cluster %s: offline pods not planned for: %s%s", cluster.name,
                        "; ".join(notes[:_MAX_NOTES]), more, extra={"cluster": cluster.name})


def _failed(metrics: ServiceMetrics, cluster: str, error: object) -> None:
    """A failed list or watch of ``cluster``'s pods, as the watch reports it (on its thread)."""
    metrics.kubernetes_demand_failed(cluster)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


__all__ = [
    "MAX_CLASSES",
    "RESERVED_PREFIXES",
    "ClusterDemand",
    "KubernetesDemandSource",
    "PodReader",
    "PodState",
    "class_name",
    "is_class_label",
    "pod_state",
    "rounded_up",
]
