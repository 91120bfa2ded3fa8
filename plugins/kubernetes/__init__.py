"""Kubernetes sources and sinks, through the official ``kubernetes`` client.

- ``config``: the clusters one broker serves (name, site, kubeconfig + context or in-cluster) and one
  ``ApiClient`` per cluster;
- ``informer``: list, then watch, nodes or pods of one cluster, keeping a local copy by ``resourceVersion``;
  a watch that times out is resumed from the last version seen, one answered with 410 Gone (the version was
  compacted away) is replaced by a fresh list; a periodic resync lists again;
- ``node_status``: writes the plan's offline capacity to node status as the extended resources
  ``<domain>/batch-cpu`` (millicores) and ``<domain>/batch-memory`` (MiB quantities) with the smallest JSON
  patch that changes what differs, comparing quantities by value (the API server rewrites ``8000`` as ``8k``);
- ``usage``: online usage per node from the metrics API, minus the offline pods' own usage, ready for the
  capacity estimator's ``UsageHistory``; stale nodes are marked unseen;
- ``quota_status``: each quota group's runtime quota, usage, borrowed and lent amounts on the
  ``ElasticQuotaPolicy`` status subresource, written only when they change;
- ``policy_watch``: the ``ElasticQuotaPolicy`` objects of one cluster, followed by list + watch, and the
  ``Accepted`` condition telling an object whether its spec was applied (``policy_source.kind: kubernetes``);
- ``pods``: the unfinished pods of one cluster, followed by list + watch as plain dicts, the source of
  Kubernetes demand (``demand.kind: kubernetes``);
- ``lease``: leader election through a ``coordination.k8s.io/v1`` Lease, with a fencing token;
- ``errors`` / ``clock``: the client's failures as the broker's ``PeerError`` tree; wall-clock helpers.

``broker serve`` (``broker/service``) runs them for the clusters of its ``kubernetes_clusters`` file. Not yet: a
Prometheus usage source.
"""

from plugins.kubernetes.config import ClusterConfig, ClustersConfig, api_client, api_clients, load_clusters
from plugins.kubernetes.errors import peer_error
from plugins.kubernetes.informer import Informer, object_key
from plugins.kubernetes.lease import LeaseElector, LeaseRecord, MicroTime
from plugins.kubernetes.node_status import NodeCapacitySink, capacity_patch
from plugins.kubernetes.quota_status import QuotaStatusWriter, quota_status, status_schema
from plugins.kubernetes.usage import MetricsApiUsage, OnlineUsage, is_offline

__all__ = [
    "ClusterConfig",
    "ClustersConfig",
    "Informer",
    "LeaseElector",
    "LeaseRecord",
    "MetricsApiUsage",
    "MicroTime",
    "NodeCapacitySink",
    "OnlineUsage",
    "QuotaStatusWriter",
    "api_client",
    "api_clients",
    "capacity_patch",
    "is_offline",
    "load_clusters",
    "object_key",
    "peer_error",
    "quota_status",
    "status_schema",
]
