"""Aggregation of identical nodes.

Nodes with the same site, labels and lendable capacity (NIC budget included) are interchangeable for every
constraint of the model, so the LP needs one variable per class and *group*, not per class and node: a fleet
of 5,000 nodes built from a few machine types and spare levels becomes a few hundred groups. The LP of the
grouped model equals the LP of the per-node model (averaging a per-node LP solution over a group's members
gives a grouped solution of the same value, and spreading a grouped one evenly gives a per-node one), so the
bound stays exact; integrality is restored by the exact per-node packing in ``packing``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.scheduler.compiled import BoolArray, Compiled, IntArray


@dataclass(frozen=True, eq=False)
class Groups:
    """``members[g]``: node indices of group ``g``, in inventory order; ``cap``/``site``/... describe one
    member."""

    group_of: IntArray  # [N]
    members: tuple[IntArray, ...]
    cap: IntArray  # [G, D]
    site: IntArray  # [G]
    disk: BoolArray  # [G]
    stable: BoolArray  # [G]

    @property
    def size(self) -> IntArray:
        """[G] number of nodes per group."""
        return np.array([len(m) for m in self.members], dtype=np.int64)


def group_nodes(compiled: Compiled) -> Groups:
    """Group ``compiled``'s nodes by (site, disk, stable, capacity); groups in order of their first member."""
    key = np.column_stack([compiled.node_site, compiled.node_disk, compiled.node_stable, compiled.cap])
    if key.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(group_of=empty, members=(), cap=compiled.cap[:0], site=empty,
                      disk=np.zeros(0, dtype=bool), stable=np.zeros(0, dtype=bool))
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group_of = rank[inverse.reshape(-1)]
    by_group = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[by_group], np.arange(order.size + 1))
    members = tuple(by_group[bounds[g]:bounds[g + 1]] for g in range(order.size))
    reps = first[order]
    return Groups(group_of=group_of, members=members, cap=compiled.cap[reps], site=compiled.node_site[reps],
                  disk=compiled.node_disk[reps], stable=compiled.node_stable[reps])


__all__ = ["Groups", "group_nodes"]
