"""What a policy change changes: the field-level diff admins review, and its effect on runtime quota
(dry-run).

``diff_policies`` compares two policies group by group, field by field, in the text admins write
(``team-a.min.cpu: 40 -> 50``); it is what the store records with every version. ``dry_run`` computes each
group's runtime quota under both policies for the same pool and demand, so an admin sees who gains and who
loses before applying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from broker.errors import InputError
from broker.model import Resources
from broker.quota.policy import QuotaPolicy
from broker.quota.runtime import GroupQuota, compute_runtime_quota


class ChangeKind(StrEnum):
    """How a group or a field differs between two policies."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one group: its text before and after (``None`` when unset on that side)."""

    group: str
    field: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> ChangeKind:
        """Added, removed or changed."""
        if self.before is None:
            return ChangeKind.ADDED
        return ChangeKind.REMOVED if self.after is None else ChangeKind.CHANGED

    def line(self) -> str:
        """``~ team-a.min.cpu: 40 -> 50`` (``+``/``-`` for whole groups or fields set or unset)."""
        mark = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.CHANGED: "~"}[self.kind]
        if self.field == "":
            return f"{mark} group {self.group}"
        return f"{mark} {self.group}.{self.field}: {self.before or '(unset)'} -> {self.after or '(unset)'}"


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list | tuple):
        return {prefix: ", ".join(str(x) for x in data)}
    return {prefix: str(data)}


def _fields(policy: QuotaPolicy | None) -> dict[str, dict[str, str]]:
    if policy is None:
        return {}
    out: dict[str, dict[str, str]] = {}
    for group in policy.for_storage()["groups"]:
        name = group.pop("name")
        out[name] = _flatten(group)
    return out


def diff_policies(before: QuotaPolicy | None, after: QuotaPolicy) -> tuple[FieldChange, ...]:
    """Every difference: groups added or removed (``field == ""``) and each field changed, in a stable
    order."""
    old, new = _fields(before), _fields(after)
    changes: list[FieldChange] = []
    for name in [*new, *(n for n in old if n not in new)]:
        if name not in old:
            changes.append(FieldChange(name, "", None, "group"))
        elif name not in new:
            changes.append(FieldChange(name, "", "group", None))
            continue
        a, b = old.get(name, {}), new[name]
        for key in [*b, *(k for k in a if k not in b)]:
            if a.get(key) != b.get(key):
                changes.append(FieldChange(name, key, a.get(key), b.get(key)))
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class RuntimeChange:
    """One group's runtime quota under the current policy (``before``) and the proposed one (``after``)."""

    group: str
    before: GroupQuota | None
    after: GroupQuota | None

    @property
    def changed(self) -> bool:
        """True when the group's runtime quota, borrowed or lent amount differs (or it appears or
        disappears)."""
        if self.before is None or self.after is None:
            return True
        b, a = self.before, self.after
        return (b.runtime, b.borrowed, b.lent, b.min) != (a.runtime, a.borrowed, a.lent, a.min)

    def for_storage(self) -> dict[str, Any]:
        """JSON form: both sides (``null`` where the group does not exist)."""
        return {
            "before": self.before.for_storage() if self.before else None,
            "after": self.after.for_storage() if self.after else None,
            "changed": self.changed,
        }


def dry_run(before: QuotaPolicy | None, after: QuotaPolicy, pool: Resources,
            demand: Mapping[str, Resources]) -> tuple[RuntimeChange, ...]:
    """Each group's runtime quota under both policies for the same pool and demand (per leaf).

    Demand for a leaf that exists under only one policy counts under that one only; demand for a group that is
    a leaf under neither is an ``InputError``.
    """
    leaves_of = [{p.tree.names[i] for i in p.tree.leaves} for p in (before, after) if p is not None]
    for name in demand:
        if not any(name in leaves for leaves in leaves_of):
            raise InputError(f"demand.{name}", "not a leaf group of either policy")

    def under(policy: QuotaPolicy | None) -> Mapping[str, GroupQuota]:
        if policy is None:
            return {}
        leaves = {policy.tree.names[i] for i in policy.tree.leaves}
        return compute_runtime_quota(policy, pool, {k: v for k, v in demand.items() if k in leaves}).groups

    old, new = under(before), under(after)
    names = [*new, *(n for n in old if n not in new)]
    return tuple(RuntimeChange(name, old.get(name), new.get(name)) for name in names)


__all__ = ["ChangeKind", "FieldChange", "RuntimeChange", "diff_policies", "dry_run"]
