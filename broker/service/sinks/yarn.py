"""The YARN sink: one cluster's ResourceManager made to enforce the plan, through the YARN bridge.

``push`` is ``ClusterBridge.sync``: shrinks against the bridge's remembered node list first (verified by
read-back), then whatever the plan changed (node capacities, labels, queue capacities), each part of the RM's
state read only when its last read is stale or the plan asks for something new in it. An unchanged plan costs no
request.

``shrink`` is the same sync restricted to the given nodes, with nothing else in the plan: no labels and no teams,
so the labels and queues are not looked at. The bridge pushes those nodes' shrinks against its remembered node
list at once, without reading anything first; ``GET /nodes`` is read only when the bridge has no list yet, or
(after the shrinks are on the RM) when its list is older than ``drift_check_s`` or a push was not confirmed.

Victims are removed through the RM's container signal API (Hadoop 3.2+,
``POST /ws/v1/cluster/containers/{id}/signal/{command}``, admin only): ``GRACEFUL_SHUTDOWN`` makes the
NodeManager send SIGTERM, ``FORCEFUL_SHUTDOWN`` SIGKILL, on its next heartbeat. The RM answers 500 "Trying to
signal an absent container" for a container (or application) it no longer has: that victim is already gone and
counts as evicted. A container that ignores the signal is still covered by the node's shrink: the RM preempts
over-committed containers when the push's ``overCommitTimeout`` (``YarnCluster.overcommit_timeout_ms``) runs out.

Failures never escape: a ``BrokerError`` (an RM that cannot be reached, answers 5xx, or a plan the bridge refuses)
becomes a report with ``ok`` false. When a call does not finish (the loop's timeout cancels it, or anything
unexpected is raised) the sink cannot tell which writes reached the RM, so it drops the bridge's memory: the next
push reads the RM again and applies the whole plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from enum import StrEnum
from urllib.parse import quote

from broker.errors import BrokerError, PeerError, PermanentPeerError
from broker.model import Inventory, Plan
from broker.model.demand import Sink
from broker.service.sinks.base import Eviction, SinkReport
from broker.yarn_bridge import ClusterBridge, NodeStatus, RMClient, SyncReport, YarnConfig

ABSENT_CONTAINER = "Trying to signal an absent container"
"""The RM's 500 answer for a container or application it does not have (``ClientRMService``)."""


class ContainerSignal(StrEnum):
    """The ``SignalContainerCommand`` sent to a victim."""

    GRACEFUL_SHUTDOWN = "GRACEFUL_SHUTDOWN"
    """SIGTERM: the container may clean up; the over-commit timeout covers one that does not exit."""
    FORCEFUL_SHUTDOWN = "FORCEFUL_SHUTDOWN"
    """SIGKILL."""


class YarnSink:
    """One YARN cluster's RM as a ``CapacitySink`` (see the module docstring). ``close`` closes ``client``."""

    def __init__(
        self,
        client: RMClient,
        inventory: Inventory | None = None,
        signal: ContainerSignal = ContainerSignal.GRACEFUL_SHUTDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = f"yarn:{client.cluster.name}"
        self.client = client
        self._inventory = inventory
        self._signal = signal
        self._clock = clock
        self.bridge = self._new_bridge()

    def _new_bridge(self) -> ClusterBridge:
        return ClusterBridge(self.client, self._inventory, self._clock)

    async def push(self, plan: Plan) -> SinkReport:
        """Sync the whole plan; a failure is reported, never raised."""
        started = time.perf_counter()
        with self._forgetting_unless_finished():
            try:
                report = await self.bridge.sync(plan)
            except BrokerError as exc:
                self.bridge = self._new_bridge()
                return SinkReport(sink=self.name, ok=False, seconds=time.perf_counter() - started, error=str(exc))
        return _sink_report(self.name, report, time.perf_counter() - started)

    async def shrink(self, plan: Plan, nodes: Collection[str], evictions: Sequence[Eviction]) -> SinkReport:
        """Push ``nodes``' capacities from ``plan`` (shrinks first, from the remembered node list) and signal this
        sink's victims, both at once."""
        started = time.perf_counter()
        wanted = set(nodes)
        only = plan.model_copy(
            update={
                "nodes": tuple(
                    n.model_copy(update={"labels": ()})
                    for n in plan.nodes
                    if n.node in wanted and n.cluster == self.client.cluster.name
                ),
                "teams": (),
            }
        )
        victims = [e.container for e in evictions if e.sink is Sink.YARN]
        with self._forgetting_unless_finished():
            synced, signalled = await asyncio.gather(self._sync(only), self._signal_all(victims))
        evicted = sum(1 for error in signalled if error is None)
        failures = [error for error in signalled if error is not None]
        if isinstance(synced, SyncReport):
            report = _sink_report(self.name, synced, 0.0)
        else:
            report = SinkReport(sink=self.name, ok=False, error=synced)
        errors = [e for e in (report.error, *failures[:3]) if e]
        return report.model_copy(
            update={
                "ok": report.ok and not failures,
                "evicted": evicted,
                "evictions_failed": len(failures),
                "seconds": time.perf_counter() - started,
                "error": "; ".join(errors) or None,
            }
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _sync(self, plan: Plan) -> SyncReport | str:
        """The bridge's report, or the error that stopped it (the bridge's memory is then dropped)."""
        try:
            return await self.bridge.sync(plan)
        except BrokerError as exc:
            self.bridge = self._new_bridge()
            return str(exc)

    async def _signal_all(self, containers: Sequence[str]) -> list[str | None]:
        """Per container ``None`` (signalled, or already gone) or why not."""
        return list(await asyncio.gather(*(self._signal_one(c) for c in containers)))

    async def _signal_one(self, container: str) -> str | None:
        path = f"/containers/{quote(container, safe='')}/signal/{self._signal.value}"
        try:
            await self.client.post(path)
        except PermanentPeerError as exc:
            if exc.status == 500 and ABSENT_CONTAINER in exc.message:
                return None
            return f"{container}: {exc.message}"
        except PeerError as exc:
            return f"{container}: {exc.message}"
        return None

    @contextlib.contextmanager
    def _forgetting_unless_finished(self) -> Iterator[None]:
        """Drop the bridge's memory when the block does not finish (cancelled by the loop's timeout, or a bug):
        which writes reached the RM is unknown, so the next push must read the RM again."""
        finished = False
        try:
            yield
            finished = True
        finally:
            if not finished:
                self.bridge = self._new_bridge()


def _sink_report(name: str, report: SyncReport, seconds: float) -> SinkReport:
    """The loop's summary of one sync: nodes confirmed changed, nodes not confirmed, and the first problems."""
    failed = [n for n in report.nodes if n.status is NodeStatus.FAILED]
    problems = [f"node {n.node} ({n.node_id}): {n.error}" for n in failed[:3]]
    if len(failed) > 3:
        problems.append(f"... and {len(failed) - 3} more node(s)")
    problems += [p for p in (report.labels.error, report.queues.error) if p]
    if report.labels.not_applied:
        problems.append(f"labels not applied on {len(report.labels.not_applied)} node(s)")
    if report.queues.not_applied:
        problems.append(f"queue settings not applied: {', '.join(sorted(report.queues.not_applied))}")
    return SinkReport(
        sink=name,
        ok=report.ok,
        nodes_changed=sum(1 for n in report.nodes if n.status is NodeStatus.APPLIED),
        nodes_failed=len(failed),
        seconds=seconds,
        error="; ".join(problems) or None,
    )


def yarn_sinks(
    config: YarnConfig,
    inventory: Inventory | None = None,
    signal: ContainerSignal = ContainerSignal.GRACEFUL_SHUTDOWN,
) -> list[YarnSink]:
    """One sink per configured cluster (``broker.yarn_bridge.load_config`` reads the file), each with its own
    ``RMClient`` as ``broker yarn sync`` builds it."""
    return [YarnSink(RMClient(cluster), inventory, signal) for cluster in config.clusters]


__all__ = ["ABSENT_CONTAINER", "ContainerSignal", "YarnSink", "yarn_sinks"]
