"""From an agent's sample to the fast path's decision and the sinks' evictions: the glue between the wire messages
(``plugins.node_agent.wire``), the pure rule (``broker.capacity.shrink``) and the sinks (``Eviction``)."""

from __future__ import annotations

from broker.capacity.shrink import Shrink, ShrinkConfig, shrink_node
from broker.model import NodePlan, Resources
from broker.service.sinks.base import Eviction
from plugins.node_agent.wire import NodeSample


def shrink_for(sample: NodeSample, node: NodePlan, capacity: Resources | None = None,
               config: ShrinkConfig = ShrinkConfig()) -> Shrink:
    """The fast path's decision for ``node`` from its agent's ``sample``.

    ``capacity`` is the node's capacity as the inventory knows it; without it, what the agent measured (CPUs x 1000,
    MemTotal) is used.
    """
    measured = Resources.exact(cpu_milli=sample.capacity_cpu_milli, memory_mib=sample.capacity_memory_mib)
    online = Resources.exact(cpu_milli=sample.online_cpu_milli, memory_mib=sample.online_memory_mib)
    return shrink_node(capacity or measured, online, sample.offline, node.yarn, node.kubernetes, config)


def evictions_of(node: str, shrink: Shrink) -> list[Eviction]:
    """The decision's victims as the sinks' ``Eviction``s, in kill order."""
    return [Eviction(node, victim.sink, victim.container) for victim in shrink.victims]


__all__ = ["evictions_of", "shrink_for"]
