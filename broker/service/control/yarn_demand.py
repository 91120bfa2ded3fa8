"""Offline demand read from the YARN ResourceManagers every cycle (``demand.kind: yarn``).

Each cycle reads every cluster of the YARN bridge's cluster file at once, each read bounded by
``demand.timeout_s``, with ``broker.yarn_bridge.read_demand`` (through the cluster's ``RMClient``: RM HA, auth,
retries): the pending asks of active apps, as one class per team, AM or worker, shape and label expression, and
the running usage of each team's queues. Every class, pending or running, is tied to its cluster
(``DemandClass.cluster`` = the cluster file's ``name``, which the YARN sink matches against the inventory's node
``cluster``), so the planner places one RM's work only on that RM's nodes; a cluster the inventory does not
list fails the cycle's plan step with an error naming it, as the sink could not push its nodes either. Apps
belong to teams through their queues: a team's queues on a cluster are its quota policy binding (``yarnQueues``
per cluster), else the cluster file's ``team_queues``, the precedence the YARN sink uses for queue capacities
(``broker.yarn_bridge.queues.team_queues``), so that the queues whose capacities the broker sets are the queues
whose work it counts.

Running work. The RM reports what a queue holds (``resourcesUsed``), not the shapes of its containers, and the
planner places containers. A team's running usage on a cluster becomes containers of one vCore each with an
equal share of the memory (two classes when the memory does not divide evenly, so that the sum is exact), all of
them ``running``: the planner keeps capacity for them, the runtime quota counts them as wanted, and the plan's
``TeamPlan.running`` (what the extender charges a team before its new pods) equals what the RM reports. One-vCore
slices pack more easily than the real containers do, and their AMs are not told apart; that is the price of a
queue-level reading (per-container shapes would cost a request per app).

Failure, per cluster (``demand_reads``, which the Kubernetes demand shares)::

    read ok ──────────────────────► fresh   (this cycle's demand)
    read failed, last good <= max age ► stale   (the last good demand stands in)
    read failed, none or older ─────► missing (the cluster contributes nothing until it answers)

A failed read (no answer within the timeout, no active RM, an error status, an answer that does not parse) is
never raised: it is timed and counted (``broker_yarn_demand_read_seconds``, ``..._read_failures_total``), logged
as one line, and the cycle goes on with the other clusters. The age of the demand in use is exported per cluster
(``broker_yarn_demand_age_seconds``, +Inf when missing) and ``/readyz`` shows each cluster's state (``status``).
Pending containers in queues of no team are work the broker does not plan for: they are exported per cluster and
queue (``broker_yarn_demand_unmapped_containers``) and logged when the set of such queues changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from broker.errors import PeerError
from broker.model import Demand, DemandClass, Resources, Sink, TeamBinding
from broker.service.control.demand_reads import ClusterStatus, LastGood, ReadState
from broker.service.observability.metrics import DemandReadFailure, ServiceMetrics
from broker.yarn_bridge import RMClient, YarnCluster, YarnConfig, YarnDemand, read_demand
from broker.yarn_bridge.resource import MILLI_PER_VCORE

log = logging.getLogger(__name__)


@dataclass
class _Cluster:
    """One RM's client and its reads (``demand_reads.LastGood``, on the source's monotonic clock)."""

    client: RMClient
    reads: LastGood[YarnDemand] = field(init=False)
    unmapped: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.reads = LastGood(self.name, f"YARN cluster {self.name}", "its RM answers")

    @property
    def name(self) -> str:
        return self.client.cluster.name


def team_queues(bindings: Mapping[str, TeamBinding], cluster: YarnCluster) -> dict[str, tuple[str, ...]]:
    """Team -> its queue paths on ``cluster``: the policy binding first, the cluster file's ``team_queues``
    second (the YARN sink's precedence). Teams of the cluster file that the policy lacks are kept: their demand
    is then reported as demand of a team outside the policy, not lost as unmapped queues."""
    out: dict[str, tuple[str, ...]] = {}
    for team in sorted(bindings.keys() | cluster.team_queues.keys()):
        binding = bindings.get(team)
        paths = (binding.yarn_queues.get(cluster.name) if binding is not None else None) or \
            cluster.team_queues.get(team, ())
        if paths:
            out[team] = paths
    return out


def running_classes(cluster: str, team: str, used: Resources) -> tuple[DemandClass, ...]:
    """``used`` (a team's queues' ``resourcesUsed`` on ``cluster``, whole vCores) as running one-vCore containers
    sharing the memory equally, tied to ``cluster``; two classes when it does not divide, so that they add up to
    ``used`` exactly."""
    vcores = used.cpu_milli // MILLI_PER_VCORE
    slices = max(vcores, 1)
    cpu = MILLI_PER_VCORE if vcores else 0
    share, extra = divmod(used.memory_mib, slices)
    out = []
    for count, memory in ((slices - extra, share), (extra, share + 1)):
        if count and (cpu or memory):
            out.append(DemandClass(
                name=f"yarn.{cluster}.{team}.running.{memory}Mi.{cpu // MILLI_PER_VCORE}c", team=team,
                shape=Resources.exact(cpu_milli=cpu, memory_mib=memory), count=count, running=count,
                sink=Sink.YARN, cluster=cluster))
    return tuple(out)


class YarnDemandSource:
    """The demand of every configured YARN cluster, read at once every cycle (see the module docstring).

    ``clock`` is monotonic seconds (it ages the last good demand). ``aclose`` closes the clients.
    """

    def __init__(self, clients: Sequence[RMClient], metrics: ServiceMetrics, *, timeout_s: float, max_age_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clusters = [_Cluster(client) for client in clients]
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._max_age_s = max_age_s
        self._clock = clock

    @classmethod
    def from_config(cls, config: YarnConfig, metrics: ServiceMetrics, *, timeout_s: float,
                    max_age_s: float) -> YarnDemandSource:
        """One client per cluster of the YARN bridge's cluster file, as ``broker yarn`` builds them."""
        return cls([RMClient(cluster) for cluster in config.clusters], metrics, timeout_s=timeout_s,
                   max_age_s=max_age_s)

    async def demand(self, now_s: float, bindings: Mapping[str, TeamBinding]) -> Demand:
        """Every cluster's pending and running demand, read at once; a cluster whose read fails contributes its
        last good demand while that is not older than the max age, then nothing."""
        queues = {c.name: team_queues(bindings, c.client.cluster) for c in self._clusters}
        await asyncio.gather(*(self._read(cluster, queues[cluster.name]) for cluster in self._clusters))
        now = self._clock()
        classes: list[DemandClass] = []
        pending: Counter[str] = Counter({team: 0 for mapped in queues.values() for team in mapped})
        unmapped: dict[tuple[str, str], int] = {}
        ages: dict[str, float] = {}
        for cluster in self._clusters:
            last = cluster.reads.in_use(now, self._max_age_s)
            ages[cluster.name] = cluster.reads.age_s(now)
            if last is None:
                continue
            classes += last.pending
            for team, used in sorted(last.running.items()):
                classes += running_classes(cluster.name, team, used)
            for item in last.pending:
                pending[item.team] += item.count
            unmapped.update({(cluster.name, queue): n for queue, n in last.unmapped_queues.items()})
            self._report_unmapped(cluster, last)
        self._metrics.yarn_demand_used(ages, pending, unmapped)
        return Demand(classes=tuple(classes))

    def status(self) -> dict[str, ClusterStatus]:
        """Each cluster's state as of the last cycle, for ``/readyz``."""
        now = self._clock()
        return {c.name: c.reads.status(now) for c in self._clusters}

    async def aclose(self) -> None:
        for cluster in self._clusters:
            await cluster.client.aclose()

    async def _read(self, cluster: _Cluster, queues: Mapping[str, tuple[str, ...]]) -> None:
        """Read one cluster (``queues``: team -> its queues there), bounded by the timeout; a failure is recorded
        on ``cluster``, never raised."""
        started = time.perf_counter()
        failure: DemandReadFailure | None = None
        try:
            result = await asyncio.wait_for(read_demand(cluster.client, queues), self._timeout_s)
        except TimeoutError:
            failure, error = DemandReadFailure.TIMEOUT, f"no answer within {self._timeout_s:g} s (demand.timeout_s)"
        except PeerError as exc:
            failure, error = DemandReadFailure.PEER, str(exc)
        except Exception as exc:  # an answer the bridge read but that is no demand (a class it cannot name, ...)
            failure, error = DemandReadFailure.INVALID, f"{type(exc).__name__}: {exc}"
            log.debug("demand of YARN cluster %s unreadable", cluster.name, exc_info=True)
        else:
            cluster.reads.succeeded(result, self._clock())
        self._metrics.yarn_demand_read(cluster.name, time.perf_counter() - started, failure)
        if failure is not None:
            cluster.reads.failed(error)
            log.warning("demand of YARN cluster %s not read (%s): %s", cluster.name, failure.value, error,
                        extra={"cluster": cluster.name})

    def _report_unmapped(self, cluster: _Cluster, demand: YarnDemand) -> None:
        """Log the queues of no team that hold pending containers in ``demand``, when that set changes."""
        queues = demand.unmapped_queues
        if frozenset(queues) == cluster.unmapped:
            return
        cluster.unmapped = frozenset(queues)
        if queues:
            listed = ", ".join(f"{queue} ({n})" for queue, n in sorted(queues.items()))
            log.warning("YARN cluster %s: pending containers in queues of no team are not planned for: %s "
                        "(bind the queues to teams in the quota policy)", cluster.name, listed,
                        extra={"cluster": cluster.name})


__all__ = ["ClusterStatus", "ReadState", "YarnDemandSource", "running_classes", "team_queues"]
