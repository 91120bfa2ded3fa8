"""The policy store's contract: an append-only log of policy versions with compare-and-set on the version.

Every implementation (in memory, a local file, Redis later) keeps the same promise: ``append`` writes a record
only if its version is exactly one above the head, atomically, and otherwise raises ``ConflictError`` and
writes nothing. Two admins editing at once cannot both win; the loser re-reads and retries. That one primitive
is all a Redis implementation needs (``WATCH head; MULTI; SET record; SET head; EXEC``), which is why the
protocol is shaped around it instead of around "save the current policy".
"""

from __future__ import annotations

from typing import Protocol

from broker.store.records import Observation, PolicyRecord


class PolicyStore(Protocol):
    """Versioned quota policies plus the last observation. Versions start at 1; 0 means "no policy yet"."""

    def head(self) -> int:
        """The current version (0 when nothing was ever applied)."""
        ...

    def get(self, version: int) -> PolicyRecord | None:
        """The record of ``version``, or ``None`` when there is none."""
        ...

    def history(self, limit: int) -> tuple[PolicyRecord, ...]:
        """Up to ``limit`` records, newest first."""
        ...

    def append(self, record: PolicyRecord) -> None:
        """Write ``record`` if ``record.version == head() + 1``, atomically; else ``ConflictError``, nothing
        written."""
        ...

    def observation(self) -> Observation | None:
        """The last pool and demand saved by the control loop, if any."""
        ...

    def save_observation(self, observation: Observation) -> None:
        """Replace the last observation (last writer wins: it is a cache of the world, not a decision)."""
        ...


__all__ = ["PolicyStore"]
