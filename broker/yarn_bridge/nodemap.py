"""Which YARN NodeManager (``host:port``) runs on which Kubernetes node.

The plan names Kubernetes nodes; the RM names NodeManagers by ``NodeId`` = ``host:port``. The mapping comes
from, in order:

1. the configuration's ``node_ids`` (Kubernetes node -> NodeId), which a deployment fills from the NodeManager
   pods' annotation ``NODE_ID_ANNOTATION`` (``yarn.broker.io/node-id: nm-17.idc-a:45454``) with
   ``annotated_node_ids``;
2. a plan node whose name already is a NodeId that the RM knows;
3. the RM's own node list: the NodeManager whose host name equals the Kubernetes node name (NodeManagers on
  the
   host network report the node's host name). Two NodeManagers on one host (pods with distinct ports) make the
   host ambiguous: such a node is reported unmapped until the annotation or the configuration says which one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broker.yarn_bridge.wire import RMNode

NODE_ID_ANNOTATION = "yarn.broker.io/node-id"
"""Annotation on a NodeManager pod giving its YARN NodeId (``host:port``)."""


def annotated_node_ids(pods: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, str]:
    """Kubernetes node -> NodeId from ``(node name, pod annotations)`` pairs of NodeManager pods."""
    return {
        node: annotations[NODE_ID_ANNOTATION]
        for node, annotations in pods
        if NODE_ID_ANNOTATION in annotations
    }


@dataclass(frozen=True)
class NodeIdMap:
    """The resolved mapping for one cluster, and why the rest could not be mapped."""

    to_yarn: Mapping[str, str]
    unmapped: Mapping[str, str]
    """Kubernetes node -> the reason it has no NodeId."""

    @classmethod
    def resolve(
        cls, nodes: Iterable[str], configured: Mapping[str, str], rm_nodes: Iterable[RMNode]
    ) -> NodeIdMap:
        """Map each Kubernetes node in ``nodes`` (see the module docstring for the order of sources)."""
        known = {n.id for n in rm_nodes}
        by_host: dict[str, list[str]] = defaultdict(list)
        for node in rm_nodes:
            by_host[node.host].append(node.id)
        to_yarn: dict[str, str] = {}
        unmapped: dict[str, str] = {}
        for name in nodes:
            if name in configured:
                to_yarn[name] = configured[name]
            elif name in known:
                to_yarn[name] = name
            elif len(by_host.get(name, ())) == 1:
                to_yarn[name] = by_host[name][0]
            elif by_host.get(name):
                unmapped[name] = (
                    f"{len(by_host[name])} NodeManagers on host {name} "
                    f"({', '.join(sorted(by_host[name]))}): set {NODE_ID_ANNOTATION}"
                )
            else:
                unmapped[name] = "no NodeManager with this host name in the RM's node list"
        return cls(to_yarn=to_yarn, unmapped=unmapped)


__all__ = ["NODE_ID_ANNOTATION", "NodeIdMap", "annotated_node_ids"]
