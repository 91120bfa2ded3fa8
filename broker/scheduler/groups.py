"""Aggregation of interchangeable nodes.

Nodes with the same site, labels, cluster (when a class is tied to it) and *effective* capacity are
interchangeable for every constraint of the model, so the LP needs one variable per class and *group*, not per
class and node: a fleet of 5,000 nodes built from a few machine types and spare levels becomes a couple of
hundred groups. The LP of the grouped
model equals the LP of the per-node model over the same capacities (averaging a per-node LP solution over a
group's members gives a grouped solution of the same value, and spreading a grouped one evenly gives a
per-node one), so the bound stays exact; integrality is restored by the exact per-node packing in
``packing``.

**Effective capacity** makes more nodes interchangeable and the LP closer to what nodes really hold, without
changing which loads any node admits:

- *Rounding to reachable amounts*: every container of this problem needs a multiple of ``q_d`` (the gcd of the
  classes' needs) in dimension ``d``, so a node's load in ``d`` is a multiple of ``q_d`` and its capacity
  ``L_d`` may be read as ``⌊L_d / q_d⌋ q_d``: a node lending 3.5 cores to whole-core containers holds 3. The
  LP, which would otherwise count the half core, stays a bound on every integer plan and gets tighter.
- *Dropping dimensions that cannot bind*: if ``a_kd / L_d <= a_kd' / L_d'`` for every class ``k`` (with
  ``L_d' > 0``), then ``Σ_k a_kd' x_k <= L_d'`` implies ``Σ_k a_kd x_k <= L_d`` for every load ``x``, so ``d`` is
  read as ``UNLIMITED``; its capacity rows and bin-packing cuts are implied too (``f_ε`` is monotone). The
  usual case is the NIC: most nodes' budgets hold any mix their cores hold, and nodes differing only in that
  budget fall into one group, which halves the LP's columns on the benchmark fleet.

Both tests are exact integer arithmetic; amounts too large to multiply safely are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.model import UNLIMITED
from broker.scheduler.compiled import BoolArray, Compiled, IntArray

SAFE_FACTOR = 2**31
"""Amounts below this multiply without overflowing ``int64``; larger ones keep their dimension."""


@dataclass(frozen=True, eq=False)
class Groups:
    """``members[g]``: node indices of group ``g``, in inventory order; ``cap``/``site``/... describe one
    member, ``cap`` being the effective capacity (dimensions that cannot bind read ``UNLIMITED``) and ``cluster``
    its ``Compiled.node_cluster``."""

    group_of: IntArray  # [N]
    members: tuple[IntArray, ...]
    cap: IntArray  # [G, D] effective capacity of one member
    site: IntArray  # [G]
    disk: BoolArray  # [G]
    stable: BoolArray  # [G]
    cluster: IntArray  # [G]
    size: IntArray  # [G] number of members


def group_nodes(compiled: Compiled) -> Groups:
    """Group ``compiled``'s nodes by (site, disk, stable, cluster, effective capacity); groups in order of
    their first member. Clusters no class is tied to are all ``NO_CLUSTER`` and split no group."""
    if compiled.n_nodes == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(group_of=empty, members=(), cap=compiled.cap[:0], site=empty,
                      disk=np.zeros(0, dtype=bool), stable=np.zeros(0, dtype=bool), cluster=empty, size=empty)
    cap = effective_capacity(compiled)
    key = np.column_stack([compiled.node_site, compiled.node_disk, compiled.node_stable, compiled.node_cluster,
                           cap])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group_of = rank[inverse.reshape(-1)]
    by_group = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[by_group], np.arange(order.size + 1))
    members = tuple(by_group[bounds[g]:bounds[g + 1]] for g in range(order.size))
    reps = first[order]
    return Groups(group_of=group_of, members=members, cap=cap[reps], site=compiled.node_site[reps],
                  disk=compiled.node_disk[reps], stable=compiled.node_stable[reps],
                  cluster=compiled.node_cluster[reps], size=np.diff(bounds))


def effective_capacity(compiled: Compiled) -> IntArray:
    """[N, D] each node's capacity rounded down to amounts containers reach, with the dimensions that cannot
    bind set to ``UNLIMITED`` (see the module docstring). The dropping test runs once per distinct rounded
    capacity row."""
    need = compiled.need[compiled.count > 0]
    step = np.gcd.reduce(need, axis=0) if need.size else np.zeros(compiled.cap.shape[1], dtype=np.int64)
    reached = compiled.cap - np.where(step > 0, compiled.cap % np.maximum(step, 1), 0)
    rows, inverse = np.unique(np.where(compiled.cap < UNLIMITED, reached, compiled.cap), axis=0,
                              return_inverse=True)
    dims = rows.shape[1]
    safe_need: BoolArray = np.all(need < SAFE_FACTOR, axis=0)
    safe_cap = rows < SAFE_FACTOR
    # implied[u, d, e]: on capacity row u, dimension d binds no earlier than e for every class
    # (a_kd * L_e <= a_ke * L_d for all k, with L_e > 0: a zero row e implies nothing for classes that do
    # not use e), one pair at a time to keep memory at [U, K].
    implied = np.zeros((rows.shape[0], dims, dims), dtype=bool)
    for d in range(dims):
        for e in range(dims):
            if d != e and safe_need[d] and safe_need[e]:
                lhs = need[None, :, d] * rows[:, e, None]
                rhs = need[None, :, e] * rows[:, d, None]
                implied[:, d, e] = ((lhs <= rhs).all(axis=1) & safe_cap[:, d] & safe_cap[:, e]
                                    & (rows[:, e] > 0))
    dropped = np.zeros(rows.shape, dtype=bool)
    for d in range(dims):
        others = np.arange(dims) != d
        dropped[:, d] = np.any(implied[:, d, others] & ~dropped[:, others], axis=1)
    effective: IntArray = np.where(dropped, UNLIMITED, rows)[inverse.reshape(-1)]
    return effective


__all__ = ["Groups", "effective_capacity", "group_nodes"]
