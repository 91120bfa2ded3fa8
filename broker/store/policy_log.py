"""Changing the quota policy: validate as a whole, diff, write a new version with compare-and-set, roll back.

``PolicyLog`` is what the CLI and the admin API share, so both enforce the same rules: a change is a whole
``QuotaPolicy`` (already valid by construction), it is written only on top of the version its author saw
(``expected_version``; a stale one is a ``ConflictError`` and nothing is written), applying a policy identical
to the current one writes nothing, and a rollback is a new version that restores an old policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.errors import ConflictError, InputError
from broker.model import Resources
from broker.quota import FieldChange, QuotaPolicy, RuntimeChange, diff_policies, dry_run
from broker.store.base import PolicyStore
from broker.store.records import Action, PolicyRecord


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an apply or rollback: the record now current and whether a new version was written."""

    record: PolicyRecord
    written: bool


@dataclass(frozen=True, slots=True)
class Preview:
    """What applying a policy would do: the field changes and, when a pool is known, every group's runtime
    quota."""

    base_version: int
    changes: tuple[FieldChange, ...]
    runtime: tuple[RuntimeChange, ...]


class PolicyLog:
    """Policy administration over any ``PolicyStore``. ``clock`` returns the current time (UTC)."""

    def __init__(self, store: PolicyStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self._clock = clock

    def current(self) -> PolicyRecord | None:
        """The record of the current version, if any policy was ever applied."""
        return self.store.get(self.store.head())

    def version(self, version: int) -> PolicyRecord:
        """The record of ``version``; ``InputError`` naming ``version`` when it does not exist."""
        record = self.store.get(version)
        if record is None:
            head = self.store.head()
            raise InputError("version", f"no version {version}; the store has versions 1 to {head}")
        return record

    def apply(self, policy: QuotaPolicy, author: str, expected_version: int | None = None,
              comment: str = "") -> Outcome:
        """Write ``policy`` as the next version on top of ``expected_version`` (default: the head read
        now)."""
        return self._write(policy, author, expected_version, comment, Action.APPLY, None)

    def rollback(self, version: int, author: str, expected_version: int | None = None) -> Outcome:
        """Write the policy of ``version`` as a new version (history is never rewritten)."""
        target = self.version(version)
        return self._write(target.policy, author, expected_version, f"rollback to version {version}",
                           Action.ROLLBACK, version)

    def preview(self, policy: QuotaPolicy, pool: Resources | None = None,
                demand: Mapping[str, Resources] | None = None) -> Preview:
        """The dry-run of applying ``policy``: its diff, and its runtime effect under ``pool`` and ``demand``.

        Without ``pool``, the store's last observation (pool and demand from the control loop) is used;
        without either, only the diff is shown.
        """
        current = self.current()
        before = current.policy if current else None
        if pool is None:
            seen = self.store.observation()
            if seen is not None:
                pool, demand = seen.pool, demand if demand is not None else seen.demand
        runtime = dry_run(before, policy, pool, demand or {}) if pool is not None else ()
        return Preview(base_version=current.version if current else 0, changes=diff_policies(before, policy),
                       runtime=runtime)

    def _write(self, policy: QuotaPolicy, author: str, expected_version: int | None, comment: str,
               action: Action, rollback_of: int | None) -> Outcome:
        head = self.store.head()
        base = head if expected_version is None else expected_version
        if base != head:
            raise ConflictError(base, head)
        current = self.store.get(head)
        changes = diff_policies(current.policy if current else None, policy)
        if current is not None and not changes:
            return Outcome(record=current, written=False)
        record = PolicyRecord(version=base + 1, author=author, created_at=self._clock(), action=action,
                              rollback_of=rollback_of, comment=comment, diff=tuple(c.line() for c in changes),
                              policy=policy)
        self.store.append(record)
        return Outcome(record=record, written=True)


__all__ = ["Outcome", "PolicyLog", "Preview"]
