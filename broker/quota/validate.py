"""The rules a quota policy keeps, checked as a whole so that a file is accepted or rejected entirely.

``problems(groups)`` returns every broken rule at once (an admin fixes a file in one pass), each naming the
group and the field as ``groups[<name>].<field>``:

- names are unique; every ``parent`` exists; parents form a tree (no cycles);
- ``min <= max``, ``lendingLimit <= min`` and ``borrowingLimit <= max`` for *every* pool size (see
  ``amount``), ``min`` is never unlimited;
- the children's mins add up to no more than their parent's min, for every pool size; the top-level shares of
  the pool add up to at most 100%;
- only leaves carry YARN queues and namespaces, and no queue or namespace is claimed by two leaves.

Percent-of-pool values are compared as linear forms, so a policy valid for today's pool stays valid for any
pool.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from broker.errors import InputError
from broker.model import UNLIMITED, Dimension
from broker.quota.amount import BASIS, DIMENSIONS, ZERO_AMOUNT, Amount, Limits, total_of
from broker.quota.group import QuotaGroup

MAX_GROUPS = 10_000
"""Largest policy accepted (a tree of 100 teams needs about 130 groups)."""

_QUEUE_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLUSTER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,251}[A-Za-z0-9])?$")
_UNLIMITED_AMOUNT = Amount.model_construct(absolute=UNLIMITED, basis_points=0)


def _where(group: str, field: str) -> str:
    return f"groups[{group}].{field}"


def problems(groups: Sequence[QuotaGroup]) -> list[InputError]:
    """Every rule the groups break, in a stable order (by group, then by rule)."""
    found: list[InputError] = []
    if len(groups) > MAX_GROUPS:
        return [InputError("groups", f"{len(groups)} groups; the limit is {MAX_GROUPS}")]
    by_name: dict[str, QuotaGroup] = {}
    for index, group in enumerate(groups):
        if group.name in by_name:
            found.append(InputError(f"groups[{index}].name", f"duplicate group name {group.name!r}"))
        else:
            by_name[group.name] = group
    found += _tree_problems(by_name)
    for group in by_name.values():
        found += _limit_problems(group)
    found += _children_problems(by_name)
    found += _binding_problems(by_name)
    return found


def _tree_problems(by_name: dict[str, QuotaGroup]) -> list[InputError]:
    """Unknown parents and cycles; a group in a cycle never reaches the pool."""
    found: list[InputError] = []
    for group in by_name.values():
        if group.parent is not None and group.parent not in by_name:
            found.append(InputError(_where(group.name, "parent"), f"unknown parent group {group.parent!r}"))
    reported: set[str] = set()
    for start in by_name.values():
        path: list[str] = []
        seen: set[str] = set()
        node: QuotaGroup | None = start
        while node is not None and node.name not in seen:
            seen.add(node.name)
            path.append(node.name)
            node = by_name.get(node.parent) if node.parent is not None else None
        if node is not None and node.name not in reported:
            cycle = path[path.index(node.name):]
            reported.update(cycle)
            found.append(InputError(_where(node.name, "parent"),
                                    "parents form a cycle: " + " -> ".join([*cycle, node.name])))
    return found


def _limit_problems(group: QuotaGroup) -> list[InputError]:
    """min <= max, lendingLimit <= min, borrowingLimit <= max, per dimension, for every pool size."""
    found: list[InputError] = []
    mins = group.min.amounts(ZERO_AMOUNT)
    maxes = group.max.amounts(_UNLIMITED_AMOUNT)
    for dim, low, high in zip(DIMENSIONS, mins, maxes, strict=True):
        name = dim.value
        if low.absolute >= UNLIMITED:
            found.append(InputError(_where(group.name, f"min.{name}"), "min cannot be unlimited"))
        elif not low.never_above(high):
            found.append(InputError(_where(group.name, f"min.{name}"),
                                    f"min {low.text(dim)} is above max {high.text(dim)}"
                                    + (" for some pool sizes" if low.is_share or high.is_share else "")))
    for name, lend in group.lending_limit.items():
        low = getattr(group.min, name) or ZERO_AMOUNT
        if not lend.never_above(low):
            dim = DIMENSIONS[Limits.FIELDS.index(name)]
            found.append(InputError(_where(group.name, f"lendingLimit.{name}"),
                                    f"lendingLimit {lend.text(dim)} is out of range: it may not exceed min "
                                    f"{low.text(dim)} (only unused min can be lent)"))
    for name, borrow in group.borrowing_limit.items():
        high = getattr(group.max, name) or _UNLIMITED_AMOUNT
        if not borrow.never_above(high):
            dim = DIMENSIONS[Limits.FIELDS.index(name)]
            found.append(InputError(_where(group.name, f"borrowingLimit.{name}"),
                                    f"borrowingLimit {borrow.text(dim)} is out of range: it may not exceed "
                                    f"max {high.text(dim)}"))
    return found


def _children_problems(by_name: dict[str, QuotaGroup]) -> list[InputError]:
    """The sum of the children's mins fits in the parent's min; top-level shares fit in the pool."""
    children: dict[str | None, list[QuotaGroup]] = {}
    for group in by_name.values():
        children.setdefault(group.parent, []).append(group)
    found: list[InputError] = []
    for parent, kids in children.items():
        for index, dim in enumerate(DIMENSIONS):
            summed = total_of([kid.min.amounts(ZERO_AMOUNT)[index] for kid in kids])
            if parent is None:
                if summed.basis_points > BASIS:
                    found.append(InputError(_where(kids[0].name, f"min.{dim.value}"),
                                            f"top-level mins add up to {summed.text(dim)} of the pool"))
                continue
            owner = by_name.get(parent)
            if owner is None:
                continue  # reported as an unknown parent
            limit = owner.min.amounts(ZERO_AMOUNT)[index]
            if not summed.never_above(limit):
                found.append(InputError(_where(parent, f"min.{dim.value}"),
                                        f"children's mins add up to {_sum_text(summed, dim)}, above the "
                                        f"group's min {limit.text(dim)}"))
    return found


def _sum_text(amount: Amount, dim: Dimension) -> str:
    """A linear sum as text: ``40 + 10%`` when it mixes quantities and shares."""
    if amount.absolute and amount.basis_points:
        plain = Amount.model_construct(absolute=amount.absolute, basis_points=0)
        share = Amount.model_construct(absolute=0, basis_points=amount.basis_points)
        return f"{plain.text(dim)} + {share.text(dim)}"
    return amount.text(dim)


def _binding_problems(by_name: dict[str, QuotaGroup]) -> list[InputError]:
    """Bindings on leaves only, well-formed, and each queue or namespace owned by one leaf."""
    parents = {g.parent for g in by_name.values() if g.parent is not None}
    owners: dict[tuple[str, str, str], str] = {}
    found: list[InputError] = []
    for group in by_name.values():
        for kind, table, pattern in (("yarnQueues", group.yarn_queues, _QUEUE_PATH),
                                     ("namespaces", group.namespaces, _NAMESPACE)):
            if table and group.name in parents:
                found.append(InputError(_where(group.name, kind),
                                        "only leaf groups own workloads; move the bindings to a leaf"))
                continue
            for cluster, names in table.items():
                if not _CLUSTER.match(cluster):
                    found.append(InputError(_where(group.name, f"{kind}.{cluster}"), "not a cluster name"))
                for item in names:
                    field = _where(group.name, f"{kind}.{cluster}")
                    if not pattern.match(item):
                        what = "queue path" if kind == "yarnQueues" else "namespace"
                        found.append(InputError(field, f"{item!r} is not a valid {what}"))
                        continue
                    key = (kind, cluster, item)
                    if key in owners and owners[key] != group.name:
                        found.append(InputError(field, f"{item!r} on {cluster} is already claimed by group "
                                                       f"{owners[key]!r}"))
                    owners.setdefault(key, group.name)
    return found


__all__ = ["MAX_GROUPS", "problems"]
