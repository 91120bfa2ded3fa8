"""The broker's side of the node agents: the gRPC hub they stream samples to, and the fast path's glue from a sample
to a shrink decision and evictions."""

from broker.service.agents.fastpath import evictions_of, shrink_for
from broker.service.agents.hub import AgentHub, AgentLag, HubCounters, OnSample, ServerTls

__all__ = ["AgentHub", "AgentLag", "HubCounters", "OnSample", "ServerTls", "evictions_of", "shrink_for"]
