"""The compiled quota tree: groups as integer indices, limits as per-dimension columns.

The runtime computation runs every planning interval over up to thousands of groups, so it walks arrays, not
models: ``QuotaTree.of`` turns a validated policy's groups into parent / children indices, a top-down order
and, per dimension, the linear form ``(absolute, basis_points)`` of each limit. Indices follow the policy's
declared order, which is also the tie-break order wherever rounding has to pick a group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from broker.model import UNLIMITED
from broker.quota.amount import BASIS, ZERO_AMOUNT, Amount
from broker.quota.group import QuotaGroup

_UNSET = Amount.model_construct(absolute=UNLIMITED, basis_points=0)

Column = tuple[tuple[int, int], ...]
"""One limit in one dimension for every group: ``(absolute, basis_points)`` per group index."""


@dataclass(frozen=True, slots=True)
class QuotaTree:
    """A validated policy's groups in array form. Build with ``QuotaTree.of``."""

    names: tuple[str, ...]
    index: dict[str, int]
    parent: tuple[int, ...]
    """Parent index per group; -1 for a group directly under the pool."""
    children: tuple[tuple[int, ...], ...]
    top: tuple[int, ...]
    """Groups directly under the pool, in declared order."""
    order: tuple[int, ...]
    """Every group, each after its parent (breadth first, declared order within a level)."""
    leaves: tuple[int, ...]
    mins: tuple[Column, ...]
    """Per dimension: each group's min (unset = 0)."""
    maxes: tuple[Column, ...]
    """Per dimension: each group's max (unset = unlimited)."""
    lending: tuple[Column, ...]
    """Per dimension: each group's lending limit (unset = unlimited, i.e. all of min)."""
    borrowing: tuple[Column, ...]
    """Per dimension: each group's borrowing limit (unset = unlimited, i.e. up to max)."""
    weights: tuple[tuple[int, ...], ...]
    """Per dimension: each group's weight."""
    preemptible: tuple[bool, ...]

    @classmethod
    def of(cls, groups: Sequence[QuotaGroup]) -> QuotaTree:
        """Compile groups that already passed ``validate.problems`` (unique names, a tree)."""
        index = {g.name: i for i, g in enumerate(groups)}
        parent = tuple(-1 if g.parent is None else index[g.parent] for g in groups)
        kids: list[list[int]] = [[] for _ in groups]
        top: list[int] = []
        for i, p in enumerate(parent):
            (top if p < 0 else kids[p]).append(i)
        order: list[int] = list(top)
        for i in order:  # grows while iterating: breadth-first
            order.extend(kids[i])

        def column(limits: list[tuple[Amount, ...]], dim: int) -> Column:
            return tuple((row[dim].absolute, row[dim].basis_points) for row in limits)

        mins = [g.min.amounts(ZERO_AMOUNT) for g in groups]
        maxes = [g.max.amounts(_UNSET) for g in groups]
        lending = [g.lending_limit.amounts(_UNSET) for g in groups]
        borrowing = [g.borrowing_limit.amounts(_UNSET) for g in groups]
        weights = [g.weight.as_tuple() for g in groups]
        dims = range(5)
        return cls(
            names=tuple(g.name for g in groups),
            index=index,
            parent=parent,
            children=tuple(tuple(k) for k in kids),
            top=tuple(top),
            order=tuple(order),
            leaves=tuple(i for i, k in enumerate(kids) if not k),
            mins=tuple(column(mins, d) for d in dims),
            maxes=tuple(column(maxes, d) for d in dims),
            lending=tuple(column(lending, d) for d in dims),
            borrowing=tuple(column(borrowing, d) for d in dims),
            weights=tuple(tuple(w[d] for w in weights) for d in dims),
            preemptible=tuple(g.preemptible for g in groups),
        )

    @property
    def size(self) -> int:
        """Number of groups."""
        return len(self.names)

    def is_leaf(self, i: int) -> bool:
        """True when group ``i`` has no children."""
        return not self.children[i]


def resolve(column: Column, pool: int) -> list[int]:
    """One limit column for a pool of ``pool`` units (shares rounded down, ``UNLIMITED`` kept)."""
    return [UNLIMITED if a >= UNLIMITED else a + pool * bp // BASIS for a, bp in column]


__all__ = ["Column", "QuotaTree", "resolve"]
