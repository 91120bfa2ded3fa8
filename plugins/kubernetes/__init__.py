"""Kubernetes sources and sinks, through the official ``kubernetes`` client.

- ``informer``: list, then watch, nodes or pods of one cluster, keeping a local copy by ``resourceVersion``;
  a watch that times out is resumed from the last version seen, one answered with 410 Gone (the version was
  compacted away) is replaced by a fresh list; a periodic resync lists again;
- ``node_status``: writes the plan's offline capacity to node status as the extended resources
  ``<domain>/batch-cpu`` (millicores) and ``<domain>/batch-memory`` (MiB quantities) with the smallest JSON
  patch that changes what differs, comparing quantities by value (the API server rewrites ``8000`` as ``8k``);
- ``errors``: the client's failures as the broker's ``PeerError`` tree.

Not yet: online usage from the metrics API or Prometheus, the quota CRD's status, Lease-based leader election,
and the wiring of one informer pair and sink per configured cluster.
"""

from plugins.kubernetes.errors import peer_error
from plugins.kubernetes.informer import Informer, object_key
from plugins.kubernetes.node_status import NodeCapacitySink, capacity_patch

__all__ = ["Informer", "NodeCapacitySink", "capacity_patch", "object_key", "peer_error"]
