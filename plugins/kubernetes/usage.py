"""Online usage per node, from the metrics API (``metrics.k8s.io/v1beta1``, served by metrics-server).

The broker lends what online work does not use, so it needs each node's usage *without* the offline pods it
placed there itself: a node's usage counts every container, and lending against it would shrink offline capacity
because offline work grew. So::

    online(node) = max(0, usage(node) - sum of usage(offline pod) over the offline pods bound to the node)

- node usage: ``GET /apis/metrics.k8s.io/v1beta1/nodes`` (``usage.cpu``, e.g. ``"1250m"``, ``"2"`` or the
  nanocores metrics-server writes, ``"1234567n"``; ``usage.memory``, e.g. ``"8Gi"`` or ``"123456Ki"``);
- offline pods: the pods bound to the node (``spec.nodeName``), not finished, that request or limit one of the
  broker's managed resources (``<domain>/batch-cpu``, ``<domain>/batch-memory``, in any container or init
  container: the test kube-scheduler applies before calling the extender) - the names are passed in, since the
  extender's ``Conventions`` are the service layer's;
- their usage: ``GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods``, one request per namespace that has
  offline pods, summed over containers.

Quantities go through ``broker.model.quantity.parse_quantity``: CPU to millicores, memory to MiB, both rounded
up (``"1234567n"`` is 2m). An offline pod without metrics yet counts as using nothing, which overstates online
usage: the safe side (lend less). A node is *unseen* (``seen`` False, values 0, left out of the history's
buckets) when metrics-server does not list it, its ``timestamp`` is older than ``max_age_s``, or its usage cannot
be read (the reason is in ``problems``): stale metrics must make the broker lend less, never more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from kubernetes.client import CustomObjectsApi, V1Pod

from broker.capacity.history import BoolArray, IntArray, UsageHistory
from broker.errors import InputError, PeerError, PermanentPeerError
from broker.model.quantity import Dimension, parse_quantity
from plugins.kubernetes.clock import parse_rfc3339, utc_now
from plugins.kubernetes.errors import peer_error

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
_FINISHED = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True, eq=False)
class OnlineUsage:
    """Online usage of ``nodes`` (in that order): millicores and MiB, and whether each node was seen."""

    nodes: tuple[str, ...]
    cpu_milli: IntArray
    memory_mib: IntArray
    seen: BoolArray
    problems: tuple[str, ...] = ()

    def record(self, history: UsageHistory, now_s: float) -> None:
        """Add this sample to ``history`` (whose node order must be ``nodes``); unseen nodes add nothing."""
        if history.n_nodes != len(self.nodes):
            raise ValueError(f"history has {history.n_nodes} nodes, usage {len(self.nodes)}")
        history.observe(now_s, self.cpu_milli, self.memory_mib, self.seen)

    def by_node(self) -> dict[str, tuple[int, int]]:
        """``node -> (cpu_milli, memory_mib)`` for the nodes seen."""
        return {
            name: (int(cpu), int(memory))
            for name, cpu, memory, seen in zip(self.nodes, self.cpu_milli, self.memory_mib, self.seen, strict=True)
            if seen
        }


def usage_pair(usage: object, where: str) -> tuple[int, int]:
    """``{"cpu": ..., "memory": ...}`` as (millicores, MiB); ``InputError`` naming ``where`` otherwise."""
    if not isinstance(usage, Mapping):
        raise InputError(f"{where}.usage", "missing")
    return (
        parse_quantity(usage.get("cpu"), Dimension.CPU, f"{where}.usage.cpu"),
        parse_quantity(usage.get("memory"), Dimension.MEMORY, f"{where}.usage.memory"),
    )


def is_offline(pod: V1Pod, offline_resources: Collection[str]) -> bool:
    """True when a container or init container of ``pod`` requests or limits an offline resource."""
    spec = pod.spec
    if spec is None:
        return False
    for container in [*(spec.containers or []), *(spec.init_containers or [])]:
        resources = container.resources
        if resources is None:
            continue
        for amounts in (resources.requests, resources.limits):
            if amounts and any(name in amounts for name in offline_resources):
                return True
    return False


class MetricsApiUsage:
    """Reads online usage of one cluster through the official client's ``CustomObjectsApi``."""

    def __init__(
        self,
        custom: CustomObjectsApi,
        peer: str,
        offline_resources: Collection[str],
        *,
        max_age_s: float = 120.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not offline_resources:
            raise ValueError("offline_resources must name the broker's managed resources")
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        self._custom = custom
        self.peer = peer
        self._offline = frozenset(offline_resources)
        self._max_age = timedelta(seconds=max_age_s)
        self._clock = clock

    def read(self, nodes: Sequence[str], pods: Iterable[V1Pod]) -> OnlineUsage:
        """Online usage of ``nodes`` given the cluster's ``pods`` (e.g. the pod informer's snapshot).
        Raises ``PeerError`` when the metrics API cannot be read."""
        now = self._clock()
        node_items = self._list(partial(self._custom.list_cluster_custom_object, GROUP, VERSION, "nodes"))
        index = {name: i for i, name in enumerate(nodes)}
        cpu = np.zeros(len(nodes), dtype=np.int64)
        memory = np.zeros(len(nodes), dtype=np.int64)
        seen = np.zeros(len(nodes), dtype=np.bool_)
        problems: list[str] = []
        for item in node_items:
            name = str((item.get("metadata") or {}).get("name", ""))
            i = index.get(name)
            if i is None:
                continue
            stamp = parse_rfc3339(item.get("timestamp"))
            if stamp is None:
                problems.append(f"node {name}: timestamp {item.get('timestamp')!r} is not an RFC 3339 instant")
                continue
            if now - stamp > self._max_age:
                problems.append(f"node {name}: metrics from {item['timestamp']} are older than {self._max_age}")
                continue
            try:
                cpu[i], memory[i] = usage_pair(item.get("usage"), f"node {name}")
            except InputError as exc:
                problems.append(str(exc))
                continue
            seen[i] = True
        offline_cpu, offline_memory = self._offline_usage(index, pods, problems)
        cpu = np.maximum(cpu - offline_cpu, 0)
        memory = np.maximum(memory - offline_memory, 0)
        return OnlineUsage(tuple(nodes), np.where(seen, cpu, 0), np.where(seen, memory, 0), seen, tuple(problems))

    def _offline_usage(
        self, index: Mapping[str, int], pods: Iterable[V1Pod], problems: list[str]
    ) -> tuple[IntArray, IntArray]:
        """Per node, the summed usage of the offline pods bound to it."""
        where: dict[str, dict[str, int]] = defaultdict(dict)  # namespace -> pod name -> node index
        for pod in pods:
            node = pod.spec.node_name if pod.spec is not None else None
            phase = pod.status.phase if pod.status is not None else None
            meta = pod.metadata
            if meta is not None and node in index and phase not in _FINISHED and is_offline(pod, self._offline):
                where[str(meta.namespace)][str(meta.name)] = index[str(node)]
        cpu = np.zeros(len(index), dtype=np.int64)
        memory = np.zeros(len(index), dtype=np.int64)
        for namespace, names in sorted(where.items()):
            items = self._list(partial(self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "pods"))
            for item in items:
                name = str((item.get("metadata") or {}).get("name", ""))
                i = names.get(name)
                if i is None:
                    continue
                for container in item.get("containers") or []:
                    try:
                        used_cpu, used_memory = usage_pair(container.get("usage"), f"pod {namespace}/{name}")
                    except InputError as exc:
                        problems.append(f"{exc} (counted as 0: online usage is overstated)")
                        continue
                    cpu[i] += used_cpu
                    memory[i] += used_memory
        return cpu, memory

    def _list(self, call: Callable[[], Any]) -> list[dict[str, Any]]:
        try:
            listing = call()
        except Exception as exc:
            error: PeerError = peer_error(self.peer, exc)
            raise error from None
        items = listing.get("items") if isinstance(listing, dict) else None
        if not isinstance(items, list):
            raise PermanentPeerError(self.peer, "the metrics API answered without an items list")
        return [item for item in items if isinstance(item, dict)]


__all__ = ["MetricsApiUsage", "OnlineUsage", "is_offline", "usage_pair"]
