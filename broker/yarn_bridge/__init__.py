"""The YARN bridge: makes each ResourceManager enforce the broker's plan over its REST API, and reads demand
back.

Modules, by the noun they hold:

- ``config``: the clusters (RM addresses, caller, team-to-queue and node-id mappings), loaded from YAML;
- ``auth``: simple (``user.name``), SPNEGO (HTTP Negotiate with session cookies) and header authentication;
- ``client``: the RM client with active-RM discovery, standby redirects, retries and typed errors;
  ``pipeline``: its pipelined HTTP/1.1 path for batches of node pushes;
- ``wire``: reading the RM's JSON in every Jersey style;
- ``resource``: YARN's memory/vCores, the conversion from ``Resources`` and the anti-churn rule;
- ``nodemap``: Kubernetes node <-> YARN NodeId;
- ``nodes``: node capacity push with read-back verification, shrinks first as their own batch
  (``push_shrinks``); ``dynamic_resources``: the fallback for older RMs;
- ``labels``: node classes as partitions; ``queues``: team quotas as queue capacities through scheduler-conf;
  ``am_placement``: the stable partition each team's AMs go to (the queues' default label);
- ``demand``: pending and running demand per team; ``view``: what the bridge last read from an RM, and
  when; ``sync``: one cluster's compare-repair-report and the loop.
"""

from broker.yarn_bridge.auth import Auth, HeaderAuth, SimpleAuth, SpnegoAuth
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.config import NodeResourceMethod, YarnCluster, YarnConfig, load_config
from broker.yarn_bridge.demand import YarnDemand, read_demand
from broker.yarn_bridge.labels import LabelReport, partition_of
from broker.yarn_bridge.nodemap import NODE_ID_ANNOTATION, NodeIdMap, annotated_node_ids
from broker.yarn_bridge.nodes import NodeOutcome, NodeStatus, NodeTarget, push_nodes, push_shrinks
from broker.yarn_bridge.queues import QueueReport
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.resource import Change, YarnResource, classify
from broker.yarn_bridge.sync import ClusterBridge, SyncReport, reconcile_forever

__all__ = [
    "NODE_ID_ANNOTATION",
    "Auth",
    "Change",
    "ClusterBridge",
    "HeaderAuth",
    "LabelReport",
    "NodeIdMap",
    "NodeOutcome",
    "NodeResourceMethod",
    "NodeStatus",
    "NodeTarget",
    "QueueReport",
    "RMClient",
    "SimpleAuth",
    "SpnegoAuth",
    "SyncReport",
    "WriteRequest",
    "YarnCluster",
    "YarnConfig",
    "YarnDemand",
    "YarnResource",
    "annotated_node_ids",
    "classify",
    "load_config",
    "partition_of",
    "push_nodes",
    "push_shrinks",
    "read_demand",
    "reconcile_forever",
]
