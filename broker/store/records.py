"""What the policy store holds: versioned policy records and the last observed pool and demand.

A ``PolicyRecord`` is one accepted change: the whole policy as it stood after it, who made it, when, why, and
the field-level diff from the version before. History is append-only: a rollback is a new version carrying an
old policy, so the log always says who changed what.

``Observation`` is the pool size and per-leaf demand the control loop last saw; a dry-run uses it to show what
a policy change would do to every group's runtime quota *now*.

The shared (Redis) store also keeps the last published plan as a ``StoredPlan``, an ``AuditEntry`` per
administrative event, and leases whose ``Fence`` (lease name and token) a leader attaches to its writes so
that a deposed leader's late writes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from broker.model import Resources
from broker.quota import QuotaPolicy

MAX_AUTHOR = 256


class Action(StrEnum):
    """How a version came to be."""

    APPLY = "apply"
    ROLLBACK = "rollback"


class PolicyRecord(BaseModel):
    """One version of the quota policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    author: str = Field(min_length=1, max_length=MAX_AUTHOR)
    created_at: datetime
    action: Action = Action.APPLY
    rollback_of: int | None = Field(None, ge=1, description="Rollbacks: the version restored.")
    comment: str = Field("", max_length=1024)
    diff: tuple[str, ...] = Field((), description="Changes from the previous version, one line each.")
    policy: QuotaPolicy

    def summary(self) -> dict[str, object]:
        """Everything but the policy itself (for history listings)."""
        return self.model_dump(mode="json", exclude={"policy"})


class Observation(BaseModel):
    """The pool and each leaf's demand (running + pending) as the control loop last saw them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    observed_at: datetime
    pool: Resources
    demand: dict[str, Resources] = Field(default_factory=dict)


class AuditEntry(BaseModel):
    """One line of the audit log: who did what, when. The store keeps only the newest entries (a bounded
    log), so it is an operator's recent trail, not an archive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    actor: str = Field(min_length=1, max_length=MAX_AUTHOR)
    action: str = Field(min_length=1, max_length=128, description="A dotted verb, e.g. ``policy.apply``.")
    detail: str = Field("", max_length=4096)


class StoredPlan(BaseModel):
    """The last published plan as the store holds it: its JSON document and the version it was written as."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=0)
    plan_json: str


@dataclass(frozen=True, slots=True)
class Fence:
    """A leader's credential for fenced writes: the lease it holds and the token it got when acquiring it.

    Tokens only grow, so a write carrying a token older than the lease's newest one comes from a leader that
    has since been replaced, and the store refuses it.
    """

    lease: str
    token: int


__all__ = ["Action", "AuditEntry", "Fence", "Observation", "PolicyRecord", "StoredPlan"]
