"""The bridge's memory of one RM: a part of its state as last read or confirmed, when, and from which RM.

Why keep it: a repeated sync must make no requests. Each part the sync compares with the plan (node totals,
node labels, queue parameters) is kept with the time of the read it rests on and the active RM that answered.
While that read is younger than ``YarnCluster.drift_check_s``, came from the RM that is still active, and the
plan asks for nothing new in that part, the sync trusts it and sends nothing. Otherwise the part is read again,
and that read is how drift is found: a node resized by hand, a NodeManager that re-registered with its own
totals, a failover to an RM that never saw the pushed capacities. Drift is therefore repaired at most
``drift_check_s`` late instead of one interval late; ``drift_check_s = 0`` reads on every sync.

A part that a failed or unverified write may have changed is kept without a time (``at=None``): it is never
trusted to skip a read, but the node part still drives the shrink fast path (a stale view can only make the
bridge push a shrink that the plan allows anyway, and the read that follows classifies everything else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Seen(Generic[T]):
    """``value`` as read from ``rm`` at clock time ``at`` (``None``: not confirmed by a read)."""

    value: T
    at: float | None
    rm: str | None

    def fresh(self, now: float, max_age_s: float, active_rm: str | None) -> bool:
        """True when the read is younger than ``max_age_s`` and the same RM is still active."""
        return self.at is not None and self.rm == active_rm and now - self.at < max_age_s


__all__ = ["Seen"]
