"""From the LP's fractional group totals to containers on nodes, exactly.

1. **Floor**: ``⌊z_kg⌋`` containers of class k for group g. Flooring never breaks a row of the LP, so quota
   and links stay within bounds.
2. **Deal**: within each group, classes go largest first (by the fraction of a node they fill), each dealt as
   evenly as possible over the members that still have room for it (water-filling), which mirrors the LP's
   average node while never overfilling one: big containers find whole slots before small ones fill the gaps.
3. **Repair**: all still-open demand goes first-fit over the whole fleet, most valuable class first (a team
   below its guarantee before one in a fair tier, then priority, then size), local-data sites first. This also
   places what flooring dropped.

Every placement goes through ``Residual.place``, which refuses what any constraint refuses, so the result is
feasible by construction and ``check_feasible`` verifies it independently.
"""

from __future__ import annotations

import numpy as np

from broker.model import UNLIMITED
from broker.scheduler.compiled import Compiled, FloatArray, IntArray
from broker.scheduler.groups import Groups
from broker.scheduler.objective import FAIR_SLOPES, W_GUARANTEED, Terms
from broker.scheduler.residual import Residual

ROUNDING = 1e-6
"""LP values within this of an integer count as that integer (GLOP's primal tolerance is far tighter)."""


def pack(compiled: Compiled, groups: Groups, terms: Terms, z: FloatArray) -> Residual:
    """Integer placements on nodes from the LP's ``z[k, g]`` (steps 1-3 of the module docstring)."""
    state = Residual.start(compiled)
    counts = np.floor(z + ROUNDING).astype(np.int64)
    for g in np.flatnonzero(counts.sum(axis=0)).tolist():
        _pack_group(state, groups.members[g], counts[:, g], terms)
    repair(state, terms)
    return state


def _pack_group(state: Residual, members: IntArray, counts: IntArray, terms: Terms) -> None:
    """Largest class first, each dealt evenly over the members that still have room (water-filling)."""
    classes = np.flatnonzero(counts)
    largest = (state.compiled.need[classes] / np.maximum(state.cap[members[0]], 1)).max(axis=1)
    for k in classes[np.argsort(-largest, kind="stable")].tolist():
        wanted = _water_fill(state.fits(k, members), int(counts[k]))
        state.place(k, members, wanted, int(counts[k]))


def _water_fill(room: IntArray, count: int) -> IntArray:
    """Deal ``count`` items over nodes holding ``room[i]`` each, as evenly as room allows (extras in node
    order)."""
    if int(room.sum()) <= count:
        return room
    low, high = 0, int(room.max())  # smallest level L with sum(min(room, L)) >= count lies in (low, high]
    while high - low > 1:
        mid = (low + high) // 2
        if int(np.minimum(room, mid).sum()) >= count:
            high = mid
        else:
            low = mid
    deal = np.minimum(room, high - 1)
    extra = count - int(deal.sum())
    deal[np.flatnonzero(room >= high)[:extra]] += 1
    return deal


def repair(state: Residual, terms: Terms) -> None:
    """Place all open demand first-fit, most valuable class first, nodes at the data's site first."""
    compiled = state.compiled
    placed = state.counts.sum(axis=1)
    used = np.bincount(compiled.team_of, weights=terms.share * placed, minlength=compiled.n_teams)
    slope = np.where(used < terms.guarantee, W_GUARANTEED,
                     np.where(used < terms.guarantee + terms.widths.sum(axis=1), FAIR_SLOPES[-1], 0.0))
    order = sorted(np.flatnonzero(state.left > 0).tolist(),
                   key=lambda k: (-slope[compiled.team_of[k]], -int(compiled.priority[k]),
                                  -terms.share[k], k))
    for k in order:
        state.first_fit(k, _local_first(compiled, k), UNLIMITED)


def _local_first(compiled: Compiled, k: int) -> IntArray:
    """All nodes, those at sites that need no link for class ``k`` first (inventory order within each
    part)."""
    remote = compiled.link_of[k][compiled.node_site] >= 0
    order: IntArray = np.argsort(remote, kind="stable")
    return order


__all__ = ["pack", "repair"]
