"""Reading the ResourceManager's JSON, whichever Jersey style rendered it.

The RM's answers vary with its version: an empty list comes back as ``null`` (``{"nodes": null}``), and older
RMs render scalars as strings and a one-element list as a bare object (``{"nodeLabels": "x"}``). Everything
the bridge reads goes through these functions, which accept every form and refuse anything else with a
``PermanentPeerError`` naming what was malformed, so that a surprise in a peer's answer is a clear failure
instead of a ``KeyError`` deep in a sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.errors import PermanentPeerError
from broker.yarn_bridge.resource import YarnResource


def as_list(value: Any) -> list[Any]:
    """``null`` -> ``[]``, a bare object -> ``[object]``, a list -> itself."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_int(value: Any, peer: str, what: str) -> int:
    """An integer rendered as a number or (old Jersey) as a string."""
    if isinstance(value, bool):
        raise PermanentPeerError(peer, f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise PermanentPeerError(peer, f"{what}: expected an integer, got {value!r}")


def as_bool(value: Any) -> bool:
    """A boolean rendered as ``true`` or ``"true"``."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def member(data: Any, key: str, peer: str, what: str) -> Any:
    """``data[key]`` where ``data`` must be an object; ``PermanentPeerError`` naming ``what`` otherwise."""
    if not isinstance(data, dict) or key not in data:
        raise PermanentPeerError(peer, f"{what}: expected an object with {key!r}, got {str(data)[:120]}")
    return data[key]


def resource_of(data: Any, peer: str, what: str) -> YarnResource:
    """A ``{"memory": MB, "vCores": N}`` resource."""
    return YarnResource(
        memory_mb=as_int(member(data, "memory", peer, what), peer, f"{what}.memory"),
        vcores=as_int(member(data, "vCores", peer, what), peer, f"{what}.vCores"),
    )


@dataclass(frozen=True)
class RMNode:
    """A NodeManager as the RM reports it."""

    id: str
    host: str
    state: str
    total: YarnResource
    labels: tuple[str, ...]


def node_of(data: Any, peer: str) -> RMNode:
    """One element of ``/nodes`` or the ``node`` of ``/nodes/{id}``."""
    node_id = str(member(data, "id", peer, "node"))
    return RMNode(
        id=node_id,
        host=str(data.get("nodeHostName") or node_id.rsplit(":", 1)[0]),
        state=str(data.get("state", "")),
        total=resource_of(
            member(data, "totalResource", peer, f"node {node_id}"), peer, f"node {node_id}.totalResource"
        ),
        labels=tuple(str(x) for x in as_list(data.get("nodeLabels"))),
    )


def nodes_of(data: Any, peer: str) -> list[RMNode]:
    """The answer of ``GET /nodes``."""
    nodes = member(data, "nodes", peer, "/nodes")
    return [node_of(item, peer) for item in as_list(nodes.get("node") if isinstance(nodes, dict) else None)]


def conf_of(data: Any, peer: str) -> dict[str, str]:
    """The answer of ``GET /scheduler-conf``: ``{"property": [{"name", "value"}]}`` as a flat map."""
    props = as_list(member(data, "property", peer, "/scheduler-conf"))
    return {str(member(p, "name", peer, "property")): str(p.get("value", "")) for p in props}


def labels_of(data: Any, peer: str) -> dict[str, bool]:
    """The answer of ``GET /get-node-labels``: label -> exclusivity."""
    items = as_list(member(data, "nodeLabelInfo", peer, "/get-node-labels"))
    return {
        str(member(i, "name", peer, "nodeLabelInfo")): as_bool(i.get("exclusivity", False)) for i in items
    }


__all__ = [
    "RMNode",
    "as_bool",
    "as_int",
    "as_list",
    "conf_of",
    "labels_of",
    "member",
    "node_of",
    "nodes_of",
    "resource_of",
]
