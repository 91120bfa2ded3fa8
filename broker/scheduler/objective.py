"""The planner's objective, shared by the LP model, the greedy comparison and ``score``.

Everything is measured in **pool shares**: a container of class ``k`` has size

    s_k = sum over d in {cpu, memory, gpu} with P_d > 0 of  a_kd / P_d

where ``P_d`` is the fleet's total lendable amount of ``d``, so the whole pool is worth one share per
dimension and a team's guarantee ``G_t`` is worth ``Ĝ_t = sum_d min(G_td, P_d) / P_d``. A team's placed size
is ``u_t = sum_{k in t} s_k y_k`` with ``y_k`` the containers of ``k`` placed.

The objective (maximised) is **weighted so that it behaves lexicographically**; the levels, highest first:

1. *guaranteed*: ``g_t = min(u_t, Ĝ_t)``, weight ``W_G = 1000``;
2. *weighted fair share* of the rest: ``u_t - g_t`` fills three tiers of widths ``(½F_t, ½F_t, F_t)`` with
   slopes ``(8, 4, 2)``, where ``F_t = w_t / Σw · (S - Σ Ĝ)`` is the team's weighted share of what the
   guarantees leave (``S`` = number of share dimensions). Decreasing slopes make the utility concave, so
   capacity goes first to the teams furthest below their fair share;
3. *packing*: every placed share earns ``1 + ρ_k`` (``ρ_k`` in ``[0, ½]`` ranks class priority), so with the
   levels above fixed, more of the pool is used and less is left over;
4. *cost*: each container pays ``c_ks = s_k · (¼ · [remote] · r_k / r_max + ¼ · price_s / price_max)`` for the
   cross-site bytes it reads and the cloud price of site ``s``.

Why weights and not stages: one LP solve is a third of the time of four, and the weights are far enough apart
that no trade across a level pays: a share of guarantee (1000) outweighs any fair tier (≤ 8) by 125x, the
lowest fair tier (2) outweighs packing (≤ 1.5), and cost (≤ ½ per share) never outweighs placing (≥ 1), so a
container that fits is always placed. Trades could cross a level only if placing one share for one team
displaced more than 125 shares of another, which container shapes of one fleet do not allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.scheduler.compiled import LOCAL, SHARE_DIMS, Compiled, FloatArray

W_GUARANTEED = 1000.0
FAIR_SLOPES = (8.0, 4.0, 2.0)
FAIR_WIDTHS = (0.5, 0.5, 1.0)
"""Tier widths as fractions of the team's fair share ``F_t``."""
PRIORITY_BONUS = 0.5
COST_REMOTE = 0.25
COST_PRICE = 0.25


@dataclass(frozen=True, eq=False)
class Terms:
    """The objective's coefficients for one problem."""

    share: FloatArray  # [K] s_k
    bonus: FloatArray  # [K] 1 + ρ_k
    guarantee: FloatArray  # [T] Ĝ_t
    widths: FloatArray  # [T, 3] fair tier widths
    cost: FloatArray  # [K, S] c_ks per container
    biggest: FloatArray  # [K] largest fraction of the pool one container takes in a share dimension


@dataclass(frozen=True)
class Levels:
    """The objective's levels for one set of placements, and its scalar value."""

    guaranteed: float
    fair: float
    placed: float
    cost: float
    value: float

    @property
    def guaranteed_plus_fair(self) -> float:
        """Shares placed within guarantees and fair tiers: what the issue's greedy comparison counts."""
        return self.guaranteed + self.fair


def terms_of(compiled: Compiled) -> Terms:
    """The coefficients of ``compiled``'s objective (see the module docstring)."""
    pool = compiled.cap[:, list(SHARE_DIMS)].sum(axis=0).astype(np.float64)
    used = pool > 0
    inverse = np.where(used, 1.0 / np.where(used, pool, 1.0), 0.0)
    fractions = compiled.need[:, list(SHARE_DIMS)].astype(np.float64) * inverse[None, :]
    share = fractions.sum(axis=1)
    guarantee = np.minimum(compiled.guarantee[:, list(SHARE_DIMS)].astype(np.float64), pool) @ inverse
    wants = np.zeros(compiled.n_teams, dtype=bool)
    wants[compiled.team_of[compiled.count > 0]] = True
    weights = np.where(wants, compiled.weight, 0).astype(np.float64)
    above = max(float(used.sum()) - float(guarantee[wants].sum()), 0.0)
    fair = above * weights / weights.sum() if weights.sum() > 0 else np.zeros(compiled.n_teams)
    widths = fair[:, None] * np.array(FAIR_WIDTHS)[None, :]
    prio = compiled.priority.astype(np.float64)
    spread = float(prio.max() - prio.min()) if prio.size else 0.0
    bonus = 1.0 + (PRIORITY_BONUS * (prio - prio.min()) / spread if spread > 0 else np.zeros_like(prio))
    max_read = float(compiled.read.max()) if compiled.read.size else 0.0
    remote = (compiled.link_of != LOCAL).astype(np.float64)  # unreachable pairs are never placed
    read_term = remote * (compiled.read[:, None] / max_read if max_read > 0 else 0.0)
    max_price = float(compiled.site_price.max()) if compiled.site_price.size else 0.0
    price_term = compiled.site_price / max_price if max_price > 0 else np.zeros_like(compiled.site_price)
    cost = share[:, None] * (COST_REMOTE * read_term + COST_PRICE * price_term[None, :])
    return Terms(share=share, bonus=bonus, guarantee=guarantee, widths=widths, cost=cost,
                 biggest=fractions.max(axis=1, initial=0.0))


def evaluate(compiled: Compiled, terms: Terms, by_site: np.ndarray) -> Levels:
    """The levels of placements given as ``by_site[k, s]`` = containers of class ``k`` at site ``s``."""
    placed = by_site.sum(axis=1).astype(np.float64)
    used = np.bincount(compiled.team_of, weights=terms.share * placed, minlength=compiled.n_teams)
    return levels_of(used.astype(np.float64), float((terms.share * terms.bonus * placed).sum()),
                     float((terms.cost * by_site).sum()), terms)


def levels_of(used: FloatArray, bonus_weighted: float, cost: float, terms: Terms) -> Levels:
    """Levels from each team's placed size ``used[t]``, the bonus-weighted placed size and the cost."""
    guaranteed = np.minimum(used, terms.guarantee)
    rest = used - guaranteed
    fair_value = 0.0
    fair = 0.0
    for j, slope in enumerate(FAIR_SLOPES):
        tier = np.minimum(rest, terms.widths[:, j])
        rest = rest - tier
        fair += float(tier.sum())
        fair_value += slope * float(tier.sum())
    g = float(guaranteed.sum())
    return Levels(guaranteed=g, fair=fair, placed=float(used.sum()), cost=cost,
                  value=W_GUARANTEED * g + fair_value + bonus_weighted - cost)


__all__ = ["FAIR_SLOPES", "FAIR_WIDTHS", "W_GUARANTEED", "Levels", "Terms", "evaluate", "levels_of",
           "terms_of"]
