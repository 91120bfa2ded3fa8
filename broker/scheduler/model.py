r"""The optimisation model: the LP relaxation of placement over groups of identical nodes, solved with GLOP.

Notation (indices as in ``compiled``; ``g`` ranges over node groups, see ``groups``)::

    variables   z_kg ≥ 0        containers of class k on the m_g nodes of group g   (pairs (k, g) eligible
    only)
                y_k ∈ [0, D_k]  containers of class k placed
                γ_t ∈ [0, Ĝ_t]  team t's placed size within its guarantee
                φ_tj ∈ [0, W_tj]  team t's placed size in fair tier j (j = 1..3)
                ε_t ≥ 0         team t's placed size beyond its fair tiers

    maximise    Σ_t (1000 γ_t + Σ_j σ_j φ_tj) + Σ_k (1 + ρ_k) s_k y_k − Σ_kg c_{k,site(g)} z_kg

    subject to  Σ_k a_kd z_kg ≤ m_g L_gd                  ∀ g, d        capacity (NIC: a_k,net includes reads)
                y_k = Σ_g z_kg                            ∀ k           demand (D_k is y_k's bound)
                Σ_{k∈t} b_kd y_k ≤ Q_td                  ∀ t, d        runtime quota (b = shape)
                Σ_{(k,g) over l} r_k z_kg ≤ B_l            ∀ links l    link bandwidth
                Σ_{k∈t} s_k y_k = γ_t + Σ_j φ_tj + ε_t     ∀ t           team size splits into the tiers
                y_k / D_k ≤ y_a / D_a                     ∀ k, a = am(k)  executors within their AMs' share

A pair ``(k, g)`` is eligible when the labels and cluster admit it (``disk`` for shuffle writers, ``stable`` for
AMs, the class's cluster when it is tied to one: ``compiled.admits``), its data is reachable from ``site(g)``
(local, no reads, or a link with bandwidth for one container) and one container fits a node of ``g``.
``L_gd`` is the effective capacity of one member (``groups``: rounded down to what container sizes can reach,
dimensions that cannot bind dropped), which keeps the LP a bound on every integer plan while bringing it closer
to what nodes really hold. Every row is scaled by its right-hand side,
so coefficients are fractions of a node, a quota or a link.

The AM row makes an AM class worth what it unlocks: its dual price carries the value of the executors that
name it, so AMs are placed first wherever executors would be.

**Why an LP (GLOP) and not CP-SAT or a MIP.** The per-node integer model has ``classes x nodes`` variables (1M
at 5,000 nodes x 200 classes), which no MIP or CP-SAT search closes in 2 s on two cores. Grouping
interchangeable nodes is exact for the LP (see ``groups``) and leaves about 20,000 columns and 600 rows on the
benchmark fleet, which GLOP's default primal simplex solves in 0.15-0.3 s (dual simplex took 1-10 s and
switching presolve or scaling off was slower, measured on that LP); its optimum *is* the LP bound every plan
reports. Integrality costs little at fleet scale, because the fractional part of a basic solution is at most
one container per constraint and a group of many nodes absorbs it: the LP solution is floored, packed exactly
node by node, and the leftovers are placed first-fit (``packing``). The greedy plan stays the incumbent and is
returned when it scores higher. GLOP is not warm-started: the ``MPModelRequest`` solved here carries no
starting basis for it (or-tools issue #3997 asks for one), and at these solve times the greedy incumbent,
returned on a time-out, is what a warm start would buy.

**Decomposition.** Classes couple through their team (quota, tiers) and groups through their site (links);
the connected components of the team-site graph are independent LPs, solved one by one. This is exact: no
variable or row spans two components.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import linear_solver_pb2 as pb
from ortools.linear_solver import pywraplp

from broker.errors import SolverError
from broker.model import UNLIMITED
from broker.scheduler.compiled import NO_AM, UNREACHABLE, BoolArray, Compiled, FloatArray, IntArray, admits
from broker.scheduler.groups import Groups
from broker.scheduler.objective import FAIR_SLOPES, W_GUARANTEED, Terms

INFINITY = float("inf")
BIG_ITEM_EPSILONS = (0.5, 1.0 / 3.0)
GLOP = pb.MPModelRequest.GLOP_LINEAR_PROGRAMMING


@dataclass(frozen=True, eq=False)
class LpSolution:
    """The LP optimum: ``z[k, g]`` (fractional containers per class and group) and its objective, the
    bound."""

    solved: bool
    bound: float
    z: FloatArray  # [K, G]
    seconds: float


def eligible_pairs(compiled: Compiled, groups: Groups) -> BoolArray:
    """[K, G] pairs the model may use: labels and cluster admit, data reachable with bandwidth for one
    container, one fits."""
    labels = admits(compiled.requires_disk[:, None], compiled.is_am[:, None], compiled.cluster_of[:, None],
                    groups.disk[None, :], groups.stable[None, :], groups.cluster[None, :])
    link = compiled.link_of[:, groups.site]  # [K, G]
    free_or_none = np.append(compiled.link_free, UNLIMITED)  # index -1 reads UNLIMITED for local pairs
    free = free_or_none[np.where(link >= 0, link, -1)]
    reachable = (link != UNREACHABLE) & (free >= compiled.read[:, None])
    eligible: BoolArray = labels & reachable & (fits_per_node(compiled, groups) >= 1)
    return eligible & (compiled.count[:, None] > 0)


def fits_per_node(compiled: Compiled, groups: Groups) -> IntArray:
    """[K, G] containers of class k one node of group g holds when empty."""
    need = compiled.need[:, None, :]
    cap = groups.cap[None, :, :]
    per_dim = np.where(need > 0, cap // np.maximum(need, 1), UNLIMITED)
    fits: IntArray = per_dim.min(axis=2)
    return fits


class PlacementLP:
    """The LP of one component: variables, constraints and objective as separate steps, then solve and
    extract."""

    def __init__(self, compiled: Compiled, groups: Groups, terms: Terms, pairs: IntArray) -> None:
        """``pairs``: [P, 2] eligible (class, group) pairs of this component."""
        self.compiled = compiled
        self.groups = groups
        self.terms = terms
        self.pairs = pairs
        self.classes = np.unique(pairs[:, 0])
        self.teams = np.unique(compiled.team_of[self.classes])
        self.proto = pb.MPModelProto(maximize=True)
        self._add_variables()
        self._add_capacity()
        self._add_demand()
        self._add_quota()
        self._add_links()
        self._add_tiers()
        self._add_am_links()

    # --- variables and objective ----------------------------------------------------------------------------

    def _add_variables(self) -> None:
        """z per pair, y per class, γ/φ/ε per team, each with its bound and objective coefficient."""
        compiled, groups, terms = self.compiled, self.groups, self.terms
        k, g = self.pairs[:, 0], self.pairs[:, 1]
        fits = fits_per_node(compiled, groups)[k, g]
        upper = np.minimum(compiled.count[k], groups.size[g] * fits).astype(np.float64)
        cost = terms.cost[k, groups.site[g]]
        self.z_index = self._new_vars(upper, -cost)
        self.y_index = self._new_vars(compiled.count[self.classes].astype(np.float64),
                                      (terms.bonus * terms.share)[self.classes])
        self.guarantee_index = self._new_vars(terms.guarantee[self.teams],
                                              np.full(self.teams.size, W_GUARANTEED))
        self.tier_index = [self._new_vars(terms.widths[self.teams, j], np.full(self.teams.size, slope))
                           for j, slope in enumerate(FAIR_SLOPES)]
        self.excess_index = self._new_vars(np.full(self.teams.size, INFINITY), np.zeros(self.teams.size))

    def _new_vars(self, upper: FloatArray, objective: FloatArray) -> IntArray:
        start = len(self.proto.variable)
        for ub, obj in zip(upper.tolist(), objective.tolist(), strict=True):
            self.proto.variable.add(lower_bound=0.0, upper_bound=ub, objective_coefficient=obj)
        return np.arange(start, len(self.proto.variable))

    def _row(self, variables: IntArray, coefficients: FloatArray, lower: float, upper: float) -> None:
        row = self.proto.constraint.add(lower_bound=lower, upper_bound=upper)
        row.var_index.extend(variables.tolist())
        row.coefficient.extend(coefficients.tolist())

    # --- constraints ----------------------------------------------------------------------------------------

    def _add_capacity(self) -> None:
        """Each group's containers fit its members' total capacity in every dimension (scaled by that
        total)."""
        compiled, groups = self.compiled, self.groups
        order = np.argsort(self.pairs[:, 1], kind="stable")
        gs = self.pairs[order, 1]
        bounds = [*np.searchsorted(gs, np.unique(gs), side="left").tolist(), gs.size]
        for a, b in itertools.pairwise(bounds):
            rows = order[a:b]
            g = int(gs[a])
            need = compiled.need[self.pairs[rows, 0]]
            for d in range(need.shape[1]):
                cap = int(groups.cap[g, d])
                if cap >= UNLIMITED or not need[:, d].any():
                    continue
                used = need[:, d] > 0
                self._row(self.z_index[rows[used]], need[used, d] / cap, -INFINITY, float(groups.size[g]))
                self._add_big_item_cuts(rows, need[:, d] / cap, float(groups.size[g]))

    def _add_big_item_cuts(self, rows: IntArray, fraction: FloatArray, members: float) -> None:
        """Per-node bin-packing cuts ``Σ_k f_ε(a_kd / L_gd) z_kg ≤ m_g`` for ``ε`` in ``BIG_ITEM_EPSILONS``.

        ``f_ε`` (Fekete-Schepers) counts an item above ``1 - ε`` of a node as a whole node, one between ``ε``
        and ``1 - ε`` as its size and a smaller one as nothing; no node can hold items whose ``f_ε`` sum
        exceeds one, so the cut is valid (the bound stays a bound) while it tells the LP that two 60%
        containers need two nodes, which the aggregate capacity row alone does not.
        """
        for eps in BIG_ITEM_EPSILONS:
            big = fraction > 1.0 - eps
            if not big.any():
                continue
            value = np.where(big, 1.0, np.where(fraction >= eps, fraction, 0.0))
            used = value > 0
            self._row(self.z_index[rows[used]], value[used], -INFINITY, members)

    def _add_demand(self) -> None:
        """``y_k`` counts the containers of class k over all groups (its bound is the demand)."""
        position = {int(k): i for i, k in enumerate(self.classes)}
        order = np.argsort(self.pairs[:, 0], kind="stable")
        ks = self.pairs[order, 0]
        bounds = [*np.searchsorted(ks, self.classes).tolist(), ks.size]
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            k = int(self.classes[i])
            variables = np.concatenate([[self.y_index[position[k]]], self.z_index[order[a:b]]])
            self._row(variables, np.concatenate([[1.0], -np.ones(b - a)]), 0.0, 0.0)

    def _add_quota(self) -> None:
        """Each team's placed shapes stay within its runtime quota in every capped dimension."""
        compiled = self.compiled
        for t in self.teams.tolist():
            mine = np.flatnonzero(compiled.team_of[self.classes] == t)
            for d in range(compiled.quota.shape[1]):
                quota = int(compiled.quota[t, d])
                shape = compiled.shape[self.classes[mine], d]
                if quota >= UNLIMITED or not shape.any():
                    continue
                if quota == 0:
                    for i in mine[shape > 0].tolist():
                        self.proto.variable[int(self.y_index[i])].upper_bound = 0.0
                    continue
                used = shape > 0
                self._row(self.y_index[mine[used]], shape[used] / quota, -INFINITY, 1.0)

    def _add_links(self) -> None:
        """Containers reading remote data fit the free bandwidth of the link between data and compute site."""
        compiled = self.compiled
        link = compiled.link_of[self.pairs[:, 0], self.groups.site[self.pairs[:, 1]]]
        for used in np.unique(link[link >= 0]).tolist():
            rows = np.flatnonzero(link == used)
            free = float(compiled.link_free[used])
            self._row(self.z_index[rows], compiled.read[self.pairs[rows, 0]] / free, -INFINITY, 1.0)

    def _add_tiers(self) -> None:
        """Each team's placed size splits into guaranteed, fair tiers and excess (the objective values
        each)."""
        compiled, terms = self.compiled, self.terms
        for i, t in enumerate(self.teams.tolist()):
            mine = np.flatnonzero(compiled.team_of[self.classes] == t)
            parts = [self.guarantee_index[i], *(tier[i] for tier in self.tier_index), self.excess_index[i]]
            variables = np.concatenate([self.y_index[mine], np.array(parts)])
            coefficients = np.concatenate([terms.share[self.classes[mine]], -np.ones(len(parts))])
            self._row(variables, coefficients, 0.0, 0.0)

    def _add_am_links(self) -> None:
        """Executors of class k stay within the share of their AM class a that is placed (``am_class``); with
        no AM placeable in this component, none of them."""
        compiled = self.compiled
        position = {int(k): i for i, k in enumerate(self.classes)}
        for i, k in enumerate(self.classes.tolist()):
            a = int(compiled.am_of[k])
            if a == NO_AM or compiled.count[a] == 0:
                continue
            if a not in position:
                self.proto.variable[int(self.y_index[i])].upper_bound = 0.0
                continue
            self._row(np.array([self.y_index[i], self.y_index[position[a]]]),
                      np.array([1.0 / float(compiled.count[k]), -1.0 / float(compiled.count[a])]),
                      -INFINITY, 0.0)

    # --- solve and extract ----------------------------------------------------------------------------------

    def solve(self, time_limit_s: float, seed: int) -> tuple[bool, float, FloatArray]:
        """Run GLOP; return (optimal, objective, z per pair). An invalid model raises ``SolverError``."""
        request = pb.MPModelRequest(model=self.proto, solver_type=GLOP,
                                    solver_time_limit_seconds=max(time_limit_s, 0.001),
                                    solver_specific_parameters=f"random_seed: {seed % 2**31}")
        response = pb.MPSolutionResponse()
        pywraplp.Solver.SolveWithProto(request, response)
        status = response.status
        if status in (pb.MPSOLVER_MODEL_INVALID, pb.MPSOLVER_INFEASIBLE, pb.MPSOLVER_UNBOUNDED,
                      pb.MPSOLVER_MODEL_INVALID_SOLVER_PARAMETERS):
            raise SolverError(f"placement LP rejected: {pb.MPSolverResponseStatus.Name(status)} "
                              f"{response.status_str}".strip())
        if status != pb.MPSOLVER_OPTIMAL:
            return False, 0.0, np.zeros(self.pairs.shape[0])
        values = np.asarray(response.variable_value, dtype=np.float64)
        return True, float(response.objective_value), values[self.z_index]


def components(compiled: Compiled, groups: Groups, eligible: BoolArray) -> list[IntArray]:
    """Split the eligible pairs into independent components (connected teams and sites); [P, 2] arrays."""
    k, g = np.nonzero(eligible)
    n_teams = compiled.n_teams
    parent = list(range(n_teams + len(compiled.site_names)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t, s in set(zip(compiled.team_of[k].tolist(), groups.site[g].tolist(), strict=True)):
        parent[find(t)] = find(n_teams + s)
    roots = np.array([find(t) for t in compiled.team_of[k].tolist()], dtype=np.int64)
    pairs = np.column_stack([k, g])
    return [pairs[roots == r] for r in np.unique(roots).tolist()]


def solve_lp(compiled: Compiled, groups: Groups, terms: Terms, *, time_limit_s: float,
             seed: int) -> LpSolution:
    """Solve every component's LP within ``time_limit_s`` in total; ``solved`` is False if any ran out of
    time."""
    started = time.perf_counter()
    eligible = eligible_pairs(compiled, groups)
    z = np.zeros((compiled.n_classes, len(groups.members)), dtype=np.float64)
    bound = 0.0
    for pairs in components(compiled, groups, eligible):
        left = time_limit_s - (time.perf_counter() - started)
        if left <= 0:
            return LpSolution(solved=False, bound=0.0, z=z, seconds=time.perf_counter() - started)
        solved, objective, values = PlacementLP(compiled, groups, terms, pairs).solve(left, seed)
        if not solved:
            return LpSolution(solved=False, bound=0.0, z=z, seconds=time.perf_counter() - started)
        z[pairs[:, 0], pairs[:, 1]] = values
        bound += objective
    return LpSolution(solved=True, bound=bound, z=z, seconds=time.perf_counter() - started)


__all__ = ["LpSolution", "PlacementLP", "components", "eligible_pairs", "fits_per_node", "solve_lp"]
