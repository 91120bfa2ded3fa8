"""The Kubernetes sink: one cluster's nodes advertise the plan's offline capacity as extended resources.

What it writes: for each plan node of this cluster (``NodePlan.cluster``), ``NodePlan.kubernetes`` as
``<domain>/batch-cpu`` and ``<domain>/batch-memory`` in the node's ``status.capacity``, through
``plugins.kubernetes.NodeCapacitySink`` (one JSON patch per node with only the values that change). Nodes the plan
does not name are left alone.

How it diffs: the sink remembers, per node, the two values as last read from the API server or confirmed by a
successful patch, and patches a node only when the plan differs from that (compared as quantities). The memory
is refreshed by one node list when it is older than ``drift_check_s`` (or empty), which is how a value changed by
someone else (or by a write that landed after the sink gave up on it) is repaired. An unchanged plan costs no
request between those lists. ``shrink`` never lists: it patches the given nodes against the memory, and a node
it does not know is sent both values.

The official client blocks, so every call runs on the sink's own small thread pool (``concurrency`` workers, each
call bounded by ``request_timeout_s``) and the event loop is never blocked.

Failures never escape: a node whose patch failed is forgotten (the next push sends both values again) and counted
in ``nodes_failed``; a failed list is an ``ok`` false report. When a call is cancelled (the loop's timeout), the
nodes it was writing are already forgotten and the next push lists the cluster again; a write still running on
its thread from a cancelled call keeps its node unconfirmed until it has ended.

Victims (``Eviction.container`` = pod UID) are found by listing the pods on the victim's node
(``fieldSelector=spec.nodeName=<node>``) and evicted through the ``policy/v1`` Eviction subresource, so
PodDisruptionBudgets and grace periods are honoured: 429 (a budget forbids it now) is reported and left for the
next shrink or the kubelet, not retried here; 404, or a UID no longer on the node, means already gone and counts
as done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client

from broker.errors import InputError, PeerError, PermanentPeerError
from broker.model import Plan, Resources
from broker.model.demand import Sink
from broker.service.extender.conventions import Conventions
from broker.service.sinks.base import Eviction, SinkReport
from plugins.kubernetes import ClustersConfig, NodeCapacitySink, api_clients, capacity_patch, peer_error

T = TypeVar("T")


class KubernetesSink:
    """One Kubernetes cluster's node status as a ``CapacitySink`` (see the module docstring).

    ``api`` is that cluster's ``ApiClient`` (``plugins.kubernetes.api_clients``); ``close`` closes it.
    """

    def __init__(
        self,
        api: client.ApiClient,
        cluster: str,
        conventions: Conventions | None = None,
        drift_check_s: float = 30.0,
        request_timeout_s: float = 5.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if drift_check_s < 0:
            raise InputError("drift_check_s", "must be 0 or more")
        if request_timeout_s <= 0:
            raise InputError("request_timeout_s", "must be more than 0")
        if concurrency < 1:
            raise InputError("concurrency", "must be 1 or more")
        names = conventions or Conventions.for_domain()
        self.name = f"kubernetes:{cluster}"
        self.cluster = cluster
        self.peer = f"kube-apiserver {cluster}"
        self._api = api
        self._core = client.CoreV1Api(api)
        self._timeout_s = request_timeout_s
        self._resources = (names.batch_cpu, names.batch_memory)
        self._writer = NodeCapacitySink(self._core, self.peer, *self._resources, request_timeout_s=request_timeout_s)
        self._drift_check_s = drift_check_s
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix=f"sink-{cluster}")
        self._known: dict[str, dict[str, object]] = {}
        """Node -> our two resources in ``status.capacity``, as last read or confirmed."""
        self._listed_at: float | None = None
        self._running: dict[str, concurrent.futures.Future[Any]] = {}
        """Node -> a write whose caller was cancelled and that may still be running on its thread."""

    # --- the two paths ---------------------------------------------------------------------------------------

    async def push(self, plan: Plan) -> SinkReport:
        """Make every plan node of this cluster advertise its offline capacity; failures are reported."""
        started = time.perf_counter()
        if self._listed_at is None or self._clock() - self._listed_at >= self._drift_check_s:
            try:
                await self._list_nodes()
            except PeerError as exc:
                return SinkReport(sink=self.name, ok=False, seconds=time.perf_counter() - started, error=str(exc))
        mine = {n.node: n.kubernetes for n in plan.nodes if n.cluster == self.cluster}
        changed, errors = await self._write(mine)
        return _report(self.name, changed, errors, time.perf_counter() - started)

    async def shrink(self, plan: Plan, nodes: Collection[str], evictions: Sequence[Eviction]) -> SinkReport:
        """Write ``nodes``' capacities (against the memory, nothing read) and evict this sink's victims."""
        started = time.perf_counter()
        wanted = set(nodes)
        mine = {n.node: n.kubernetes for n in plan.nodes if n.cluster == self.cluster and n.node in wanted}
        victims = [e for e in evictions if e.sink is Sink.KUBERNETES]
        (changed, errors), evicted = await asyncio.gather(self._write(mine), self._evict_all(victims))
        refused = [error for error in evicted if error is not None]
        report = _report(self.name, changed, errors, 0.0)
        problems = [p for p in (report.error, *refused[:3]) if p]
        return report.model_copy(
            update={
                "ok": report.ok and not refused,
                "evicted": len(evicted) - len(refused),
                "evictions_failed": len(refused),
                "seconds": time.perf_counter() - started,
                "error": "; ".join(problems) or None,
            }
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()  # type: ignore[no-untyped-call]

    # --- capacity --------------------------------------------------------------------------------------------

    async def _list_nodes(self) -> None:
        """Refresh the memory from one node list (the drift check)."""
        at = self._clock()
        self._listed_at = None  # until the list is in: a cancelled list leaves the memory untrusted
        nodes = await self._call(lambda: self._core.list_node(_request_timeout=self._timeout_s))
        self._known = {
            node.metadata.name: {r: v for r in self._resources if (v := _capacity(node).get(r)) is not None}
            for node in nodes.items
            if node.metadata is not None and node.metadata.name and not self._in_flight(node.metadata.name)
        }
        self._listed_at = at

    async def _write(self, wanted: Mapping[str, Resources]) -> tuple[int, list[str]]:
        """Patch every node whose remembered values differ from ``wanted``: (nodes changed, errors)."""
        results = await asyncio.gather(*(self._write_one(node, offline) for node, offline in wanted.items()))
        return sum(1 for changed, _ in results if changed), [error for _, error in results if error]

    async def _write_one(self, node: str, offline: Resources) -> tuple[bool, str]:
        """(changed, error) for one node."""
        known = {} if self._in_flight(node) else self._known.get(node, {})
        if known and not capacity_patch(known, self._writer.wanted(offline)):
            return False, ""
        self._known.pop(node, None)  # forgotten until the patch is confirmed
        try:
            await self._call(lambda: self._writer.write(node, offline, known), node)
        except PeerError as exc:
            return False, f"{node}: {exc.message}"
        except asyncio.CancelledError:
            self._listed_at = None  # cancelled: which writes landed is unknown until the next list
            raise
        if not self._in_flight(node):
            self._known[node] = {name: value for name, (value, _) in self._writer.wanted(offline).items()}
        return True, ""

    def _in_flight(self, node: str) -> bool:
        """True while a write to ``node`` from a cancelled call may still land: its value is then unknown."""
        running = self._running.get(node)
        if running is not None and running.done():
            del self._running[node]
            running = None
        return running is not None

    # --- evictions -------------------------------------------------------------------------------------------

    async def _evict_all(self, victims: Sequence[Eviction]) -> list[str | None]:
        """Per victim ``None`` (evicted or already gone) or why not."""
        return list(await asyncio.gather(*(self._evict(v) for v in victims)))

    async def _evict(self, victim: Eviction) -> str | None:
        selector = f"spec.nodeName={victim.node}"
        try:
            pods = await self._call(
                lambda: self._core.list_pod_for_all_namespaces(
                    field_selector=selector, _request_timeout=self._timeout_s
                )
            )
        except PeerError as exc:
            return f"pod {victim.container} on {victim.node}: {exc.message}"
        found = [p.metadata for p in pods.items if p.metadata is not None and p.metadata.uid == victim.container]
        if not found or not found[0].name or not found[0].namespace:
            return None  # no longer on the node
        name, namespace = found[0].name, found[0].namespace
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        )
        try:
            await self._call(
                lambda: self._core.create_namespaced_pod_eviction(
                    name, namespace, body, _request_timeout=self._timeout_s
                )
            )
        except PermanentPeerError as exc:
            return None if exc.status == 404 else f"pod {namespace}/{name}: {exc.message}"
        except PeerError as exc:
            return f"pod {namespace}/{name}: {exc.message}"
        return None

    # --- threads ---------------------------------------------------------------------------------------------

    async def _call(self, call: Callable[[], T], node: str | None = None) -> T:
        """Run a blocking client call on the sink's threads; its failures as ``PeerError``. A cancelled caller
        leaves the thread running: for a node write it is remembered in ``_running`` until it ends."""
        future = self._pool.submit(call)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if node is not None and not future.done():
                self._running[node] = future
            raise
        except PeerError:
            raise
        except Exception as exc:
            raise peer_error(self.peer, exc) from None


def _capacity(node: Any) -> dict[str, object]:
    status = node.status
    capacity = status.capacity if status is not None else None
    return dict(capacity) if capacity else {}


def _report(name: str, changed: int, errors: list[str], seconds: float) -> SinkReport:
    problems = errors[:3] + ([f"... and {len(errors) - 3} more node(s)"] if len(errors) > 3 else [])
    return SinkReport(
        sink=name,
        ok=not errors,
        nodes_changed=changed,
        nodes_failed=len(errors),
        seconds=seconds,
        error="; ".join(problems) or None,
    )


def kubernetes_sinks(
    clusters: ClustersConfig,
    conventions: Conventions | None = None,
    drift_check_s: float = 30.0,
    request_timeout_s: float = 5.0,
) -> list[KubernetesSink]:
    """One sink per configured cluster (``plugins.kubernetes.load_clusters`` reads the file), each on its own
    ``ApiClient``; ``InputError`` naming the field when a cluster cannot be reached as configured."""
    return [
        KubernetesSink(api, name, conventions, drift_check_s, request_timeout_s)
        for name, api in api_clients(clusters).items()
    ]


__all__ = ["KubernetesSink", "kubernetes_sinks"]
