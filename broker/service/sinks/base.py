"""What the control loop asks of every sink (YARN ResourceManagers, Kubernetes node status), and what it gets back.

Two calls, because the two paths differ in what they may cost:

- ``push(plan)``: the loop's path, every interval. The sink makes its peer enforce the whole plan, diffing against
  what it last confirmed so that an unchanged node costs nothing.
- ``shrink(plan, nodes, evictions)``: the fast path, when a node agent reports online usage above the node's safe
  limit. Only ``nodes`` are touched, only downwards, and the chosen victims are removed; nothing else is read, so
  that the shrink reaches the peer within the fast path's budget (2 s) even on a large fleet.

A sink never raises for a peer's failure: it reports it (``SinkReport.ok`` false, ``error`` set) and the loop keeps
the last safe state and retries. The loop bounds every call with its own timeout (a hanging peer is cancelled), so
a sink must leave its remembered state consistent when cancelled: forget what it could not confirm.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from broker.model import Plan
from broker.model.demand import Sink


@dataclass(frozen=True, slots=True)
class Eviction:
    """One offline container the fast path chose (by the kill score) to remove from ``node``.

    ``container`` is the YARN container id (``container_<cluster-ts>_<app>_<attempt>_<n>``) for ``Sink.YARN`` and
    the pod UID for ``Sink.KUBERNETES`` (what a node agent sees in the cgroup tree).
    """

    node: str
    sink: Sink
    container: str


class SinkReport(BaseModel):
    """The outcome of one push or shrink on one sink."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sink: str
    ok: bool
    nodes_changed: int = Field(0, ge=0, description="Nodes whose capacity the peer confirmed changed.")
    nodes_failed: int = Field(0, ge=0, description="Nodes the peer did not confirm (kept for the next round).")
    evicted: int = Field(0, ge=0, description="Victims removed, or found already gone.")
    evictions_failed: int = Field(
        0, ge=0, description="Victims the peer refused or did not answer for (a PodDisruptionBudget's 429 ...)."
    )
    seconds: float = Field(0.0, ge=0)
    error: str | None = None


class CapacitySink(Protocol):
    """A peer that enforces the plan's offline capacity. See the module docstring for the two paths."""

    @property
    def name(self) -> str:
        """Stable name for metrics and logs, e.g. ``yarn:prod-a`` or ``kubernetes:idc-1``."""
        ...

    async def push(self, plan: Plan) -> SinkReport:
        """Enforce the whole plan; report failures instead of raising them."""
        ...

    async def shrink(self, plan: Plan, nodes: Collection[str], evictions: Sequence[Eviction]) -> SinkReport:
        """Enforce ``plan`` on ``nodes`` only (their capacity went down) and remove ``evictions``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


__all__ = ["CapacitySink", "Eviction", "SinkReport"]
