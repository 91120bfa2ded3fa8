"""Writing the plan's offline capacity to node status, as extended resources kube-scheduler counts.

kube-scheduler only places a pod that requests ``<domain>/batch-cpu`` on a node whose status advertises
enough of it, so the broker writes each node's Kubernetes batch capacity from the plan as two extended
resources in ``status.capacity`` (the kubelet copies extended resources to ``allocatable``):
``<domain>/batch-cpu`` in millicores (``8000`` = 8 cores, the unit the extender reads) and
``<domain>/batch-memory`` as a MiB quantity (``32768Mi``). Extended resources must be whole numbers.

Patches are RFC 6902 JSON patches (``application/json-patch+json``) against the ``status`` subresource, with
one ``add`` per resource whose value changes (``add`` replaces an existing member) and nothing for the others:
a node whose values already match is not written at all. Values are compared as quantities, because the API
server stores them in canonical form (``8000`` comes back as ``8k``, ``32768Mi`` as ``32Gi``); comparing the
strings would rewrite every node on every plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client import CoreV1Api

from broker.errors import InputError, PeerError
from broker.model.quantity import Dimension, parse_quantity
from broker.model.resources import Resources
from plugins.kubernetes.errors import peer_error

JsonPatch = list[dict[str, Any]]


def _pointer(name: str) -> str:
    """``name`` as one JSON-pointer token (RFC 6901: ``~`` is ``~0``, ``/`` is ``~1``)."""
    return name.replace("~", "~0").replace("/", "~1")


def _same(current: object, wanted: str, dimension: Dimension) -> bool:
    if not isinstance(current, str):
        return False
    try:
        return parse_quantity(current, dimension, "") == parse_quantity(wanted, dimension, "")
    except InputError:
        return False


def capacity_patch(
    capacity: Mapping[str, object] | None, wanted: Mapping[str, tuple[str, Dimension]]
) -> JsonPatch:
    """The smallest JSON patch giving ``status.capacity`` the ``wanted`` values (name -> (quantity,
    dimension compared in)); ``[]`` when every value already matches."""
    if capacity is None:
        return [{"op": "add", "path": "/status/capacity", "value": {n: v for n, (v, _) in wanted.items()}}]
    return [
        {"op": "add", "path": f"/status/capacity/{_pointer(name)}", "value": value}
        for name, (value, dimension) in wanted.items()
        if not _same(capacity.get(name), value, dimension)
    ]


class NodeCapacitySink:
    """Writes offline capacity to the nodes of one cluster (``peer`` names it in errors). ``request_timeout_s``
    bounds each call: the official client waits forever by default, and a hung call would hold its thread."""

    def __init__(self, core: CoreV1Api, peer: str, cpu_resource: str, memory_resource: str,
                 request_timeout_s: float | None = None) -> None:
        self._core = core
        self._timeout_s = request_timeout_s
        self.peer = peer
        self._cpu = cpu_resource
        self._memory = memory_resource

    def wanted(self, offline: Resources) -> dict[str, tuple[str, Dimension]]:
        """The extended resource values for ``offline`` capacity."""
        # batch-cpu counts millicores as whole units, so "8000" (not "8") is 8 cores: parse it as CPU and
        # it reads as 8,000 cores, which is only ever compared with another value read the same way.
        return {
            self._cpu: (str(offline.cpu_milli), Dimension.CPU),
            self._memory: (f"{offline.memory_mib}Mi", Dimension.MEMORY),
        }

    def write(self, node: str, offline: Resources, capacity: Mapping[str, object] | None) -> JsonPatch:
        """Patch ``node``'s status so that it advertises ``offline`` capacity, given its current
        ``status.capacity`` (from the node informer); returns the patch sent (``[]``: nothing to change).

        Raises ``PeerError``: permanent for a refusal (404 unknown node, 422 invalid), temporary otherwise.
        """
        patch = capacity_patch(capacity, self.wanted(offline))
        if patch:
            try:
                self._core.patch_node_status(node, patch, _request_timeout=self._timeout_s)
            except Exception as exc:
                error: PeerError = peer_error(self.peer, exc)
                raise error from None
        return patch


__all__ = ["JsonPatch", "NodeCapacitySink", "capacity_patch"]
