"""The reclaim rule, and a check of a victim set someone else chose against it.

The rule: only *borrowers* give back, a borrower being a group that uses more than its runtime quota in some
dimension; and what its victims free together may not take it below its runtime quota in any dimension where
it borrows. Dimensions where a group is within its quota do not veto a reclaim: evicting a container lowers
them too, unavoidably (a group borrowing CPU but not memory still gives its CPU back). AMs and drivers are not
forbidden, only last: killing one restarts its whole job, so whoever ranks victim sets is told whether a set
holds one.

Two callers apply the rule from opposite ends. ``plan_reclaim`` *chooses* victims among running containers and
keeps each choice inside the rule through ``borrowing_dims`` and ``within_borrowed``; the scheduler extender
receives victims kube-scheduler already chose per node and asks ``check_victims`` whether the rule allows them.
Both go through the same three helpers below, so the two cannot drift apart.

The helpers work on plain integer amounts (``Resources.FIELDS`` order) because ``plan_reclaim`` calls them once
per candidate over up to 100,000 containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from broker.model import ZERO, Resources


class Victim(Protocol):
    """What the rule reads of a victim; ``RunningContainer`` is one."""

    @property
    def id(self) -> str: ...

    @property
    def group(self) -> str: ...

    @property
    def resources(self) -> Resources: ...

    @property
    def is_am(self) -> bool: ...


class RefusalReason(StrEnum):
    """Why the victims of one group break the rule."""

    UNKNOWN_GROUP = "unknown-group"
    """The group has no runtime quota, so nothing says it borrows."""
    NOT_BORROWING = "not-borrowing"
    """The group uses no more than its runtime quota in every dimension: it owes nothing back."""
    BELOW_QUOTA = "below-quota"
    """The group borrows, but its victims together free more than it borrows in a dimension it borrows in."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """The victims of one group (by id, in the order given) the rule does not allow, and why."""

    group: str
    victims: tuple[str, ...]
    reason: RefusalReason
    detail: str


@dataclass(frozen=True, slots=True)
class VictimCheck:
    """The verdict on a victim set: one refusal per group that breaks the rule (in the order the groups first
    appear), and whether the set evicts an ApplicationMaster or driver."""

    refusals: tuple[Refusal, ...]
    evicts_am: bool

    @property
    def allowed(self) -> bool:
        """True when no group's victims break the rule."""
        return not self.refusals


def borrowed(runtime: Resources, usage: Resources) -> Resources:
    """What a group uses above its runtime quota, per dimension (zero where it is within it)."""
    return usage - runtime


def borrowing_dims(borrowed_amounts: Iterable[int]) -> tuple[int, ...]:
    """The dimensions (indices into ``Resources.FIELDS``) a group borrows in; none means it is no borrower."""
    return tuple(d for d, amount in enumerate(borrowed_amounts) if amount > 0)


def within_borrowed(taken: Sequence[int], borrowed_amounts: Sequence[int], dims: Sequence[int]) -> bool:
    """True when taking ``taken`` from a group that borrows ``borrowed_amounts`` leaves it at or above its
    runtime quota in every dimension of ``dims`` (the ones it borrows in)."""
    # an explicit loop: plan_reclaim calls it per candidate, and it is measurably faster than all() over a
    # generator
    for d in dims:  # noqa: SIM110
        if taken[d] > borrowed_amounts[d]:
            return False
    return True


def check_victims(victims: Sequence[Victim], runtime: Mapping[str, Resources],
                  usage: Mapping[str, Resources]) -> VictimCheck:
    """Whether evicting all of ``victims`` keeps to the rule, given each group's runtime quota and usage.

    A group missing from ``usage`` uses nothing; one missing from ``runtime`` is refused, since nothing says
    it borrows.
    """
    taken: dict[str, Resources] = {}
    ids: dict[str, list[str]] = {}
    for victim in victims:
        taken[victim.group] = taken.get(victim.group, ZERO) + victim.resources
        ids.setdefault(victim.group, []).append(victim.id)
    refusals = [refusal for group, amount in taken.items()
                if (refusal := _refusal(group, tuple(ids[group]), amount, runtime, usage)) is not None]
    return VictimCheck(refusals=tuple(refusals), evicts_am=any(victim.is_am for victim in victims))


def _refusal(group: str, ids: tuple[str, ...], taken: Resources, runtime: Mapping[str, Resources],
             usage: Mapping[str, Resources]) -> Refusal | None:
    """Why the victims ``ids`` of ``group``, freeing ``taken`` together, break the rule; ``None`` if they do
    not."""
    quota = runtime.get(group)
    if quota is None:
        return Refusal(group, ids, RefusalReason.UNKNOWN_GROUP, f"group {group} has no runtime quota")
    used = usage.get(group, ZERO)
    excess = borrowed(quota, used)
    dims = borrowing_dims(excess)
    if not dims:
        return Refusal(group, ids, RefusalReason.NOT_BORROWING,
                       f"group {group} is not borrowing (uses {used}, runtime quota {quota})")
    if not within_borrowed(tuple(taken), tuple(excess), dims):
        return Refusal(group, ids, RefusalReason.BELOW_QUOTA,
                       f"evicting {taken} would take group {group} below its runtime quota {quota} "
                       f"(it borrows {excess})")
    return None


__all__ = [
    "Refusal",
    "RefusalReason",
    "Victim",
    "VictimCheck",
    "borrowed",
    "borrowing_dims",
    "check_victims",
    "within_borrowed",
]
