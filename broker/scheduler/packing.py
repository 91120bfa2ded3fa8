"""From the LP's fractional group totals to containers on nodes, exactly.

1. **Floor**: ``⌊z_kg⌋`` containers of class k for group g. Flooring never breaks a row of the LP, so quota,
   links and the AM proportion stay within bounds (up to the AMs' own rounding, which step 3 absorbs).
2. **Patterns**: the members of a group are identical (``groups``), so the group is packed as first-fit
   decreasing over its nodes, in runs: a *pattern* fills one node largest class first, as many of each class
   as still fit, and is repeated on as many members as the remaining counts allow; then the next pattern.
   Filling nodes one after another keeps big containers together and the gaps they leave for small ones,
   where dealing every class evenly over the members strands capacity (two 8-core containers per 19-core
   node leave room for a 2-core one, one 8-core and one 6-core leave 5 cores nobody fills). Patterns are
   computed on the group's effective capacity and committed AM classes first, across all groups, with
   their LP totals rounded *up* where room allows, so that executors find their AMs placed.
3. **Repair**: all still-open demand goes first-fit over the whole fleet, local-data sites first, in two
   rounds (within each team's guarantee and fair tiers, then beyond), AM classes that executors name first,
   then the most valuable class (see ``repair``). This also places what flooring and packing dropped.

Every placement goes through ``Residual.place``, which refuses what any constraint refuses, so the result is
feasible by construction and ``check_feasible`` verifies it independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from broker.model import UNLIMITED
from broker.scheduler.compiled import Compiled, FloatArray, IntArray
from broker.scheduler.groups import Groups
from broker.scheduler.objective import FAIR_SLOPES, W_GUARANTEED, Terms
from broker.scheduler.residual import Residual

ROUNDING = 1e-6
"""LP values within this of an integer count as that integer (GLOP's primal tolerance is far tighter)."""


@dataclass(frozen=True, eq=False)
class Deal:
    """``wanted[i]`` containers of class ``k`` for node ``nodes[i]``."""

    k: int
    nodes: IntArray
    wanted: IntArray


def pack(compiled: Compiled, groups: Groups, terms: Terms, z: FloatArray) -> Residual:
    """Integer placements on nodes from the LP's ``z[k, g]`` (steps 1-3 of the module docstring)."""
    state = Residual.start(compiled)
    counts = np.floor(z + ROUNDING).astype(np.int64)
    deals = [deal for g in np.flatnonzero(counts.sum(axis=0)).tolist()
             for deal in patterns(compiled, groups.cap[g], groups.members[g], counts[:, g])]
    leads = compiled.leads
    for deal in deals:
        if leads[deal.k]:
            state.place(deal.k, deal.nodes, deal.wanted, int(deal.wanted.sum()))
    lp_total = np.ceil(z.sum(axis=1) - ROUNDING).astype(np.int64)
    for k in np.flatnonzero(leads).tolist():
        placed = int(compiled.count[k] - state.left[k])
        state.first_fit(k, _local_first(compiled, k), int(lp_total[k]) - placed)
    for deal in deals:
        if not leads[deal.k]:
            state.place(deal.k, deal.nodes, deal.wanted, int(deal.wanted.sum()))
    repair(state, terms)
    return state


def patterns(compiled: Compiled, cap: IntArray, members: IntArray, counts: IntArray) -> list[Deal]:
    """First-fit decreasing of ``counts[k]`` containers over identical empty ``members`` of capacity ``cap``,
    in runs of one repeated pattern (step 2); what does not fit is left out."""
    classes = np.flatnonzero(counts)
    need = compiled.need[classes]
    size = (need / np.maximum(cap, 1)).max(axis=1)
    order = np.argsort(-size, kind="stable")
    classes, need = classes[order], need[order]
    remaining = counts[classes].copy()
    wanted = np.zeros((classes.size, members.size), dtype=np.int64)
    start = 0
    while start < members.size and remaining.any():
        room = cap.copy()
        pattern = np.zeros(classes.size, dtype=np.int64)
        for i in np.flatnonzero(remaining).tolist():
            asked = need[i] > 0
            take = min(int((room[asked] // need[i, asked]).min()), int(remaining[i]))
            if take > 0:
                pattern[i] = take
                room -= take * need[i]
        used = pattern > 0
        if not used.any():
            break
        repeat = min(members.size - start, int((remaining[used] // pattern[used]).min()))
        wanted[:, start:start + repeat] = pattern[:, None]
        remaining -= repeat * pattern
        start += repeat
    return [Deal(k=int(k), nodes=members[:start], wanted=wanted[i, :start])
            for i, k in enumerate(classes.tolist()) if wanted[i, :start].any()]


def repair(state: Residual, terms: Terms) -> None:
    """Place all open demand first-fit, nodes at the data's site first, in two rounds: first up to each
    team's guarantee and fair tiers, then beyond them.

    Order within a round: AM classes that executors name, then teams below their guarantee, then those in a
    fair tier, then the class worth most per unit of the pool dimension it uses most (``density``: with the
    pool's cpu full, a 1:4 core:GiB container places more of the pool than a 1:2 one), then priority. The
    first round stops a team at the end of its tiers, so capacity that fits goes to teams still owed their
    share before any team runs past it.
    """
    compiled = state.compiled
    placed = compiled.count - state.left
    used = np.bincount(compiled.team_of, weights=terms.share * placed, minlength=compiled.n_teams)
    tiers_end = terms.guarantee + terms.widths.sum(axis=1)
    slope = np.where(used < terms.guarantee, W_GUARANTEED, np.where(used < tiers_end, FAIR_SLOPES[-1], 0.0))
    density = terms.share * terms.bonus / np.maximum(terms.biggest, np.finfo(np.float64).tiny)
    leads = compiled.leads
    order = sorted(np.flatnonzero(state.left > 0).tolist(),
                   key=lambda k: (not leads[k], -slope[compiled.team_of[k]], -density[k],
                                  -int(compiled.priority[k]), k))
    for k in order:
        t = int(compiled.team_of[k])
        room = float(tiers_end[t] - used[t])
        if leads[k] or terms.share[k] <= 0:
            limit = UNLIMITED
        elif room > 0:
            limit = math.ceil(room / float(terms.share[k]))
        else:
            continue
        used[t] += state.first_fit(k, _local_first(compiled, k), limit) * float(terms.share[k])
    for k in order:
        if state.left[k] > 0:
            state.first_fit(k, _local_first(compiled, k), UNLIMITED)


def _local_first(compiled: Compiled, k: int) -> IntArray:
    """All nodes, those at sites that need no link for class ``k`` first (inventory order within each
    part)."""
    remote = compiled.link_of[k][compiled.node_site] >= 0
    order: IntArray = np.argsort(remote, kind="stable")
    return order


__all__ = ["Deal", "pack", "patterns", "repair"]
