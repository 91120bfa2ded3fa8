"""What is left while a plan is built, and the one placement primitive every pass uses.

A ``Residual`` is the working copy of one planning pass: per-node capacity, per-team quota, per-link bandwidth
and per-class demand still open, plus the containers placed so far (``counts[k, n]``). ``first_fit`` places up
to a limit of one class on a list of nodes in order, vectorised over the nodes, and never breaks a constraint:
label and cluster eligibility, reachability of the data, capacity in every dimension (the NIC included), link bandwidth,
the team's runtime quota, the class's demand and, for executors, the share of their AMs placed so far (so
every pass places AM classes before the executors that name them). The greedy baseline, the packer and the
repair pass differ only in the order in which they call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.model import UNLIMITED
from broker.scheduler.compiled import NO_AM, Compiled, IntArray


@dataclass(eq=False)
class Residual:
    """Mutable state of one planning pass. Build a fresh one per pass with ``Residual.start``."""

    compiled: Compiled
    cap: IntArray  # [N, D]
    quota: IntArray  # [T, D]
    link: IntArray  # [L]
    left: IntArray  # [K]
    counts: IntArray  # [K, N]

    @classmethod
    def start(cls, compiled: Compiled) -> Residual:
        """Nothing placed yet."""
        return cls(compiled=compiled, cap=compiled.cap.copy(), quota=compiled.quota.copy(),
                   link=compiled.link_free.copy(), left=compiled.count.copy(),
                   counts=np.zeros((compiled.n_classes, compiled.n_nodes), dtype=np.int64))

    def allowance(self, k: int) -> int:
        """Containers of class ``k`` its open demand, its team's remaining quota and its AMs still allow."""
        return max(min(int(self.left[k]), self.quota_allowance(k), self.am_allowance(k)), 0)

    def quota_allowance(self, k: int) -> int:
        """Containers of class ``k`` its team's remaining runtime quota holds."""
        shape = self.compiled.shape[k]
        quota = self.quota[self.compiled.team_of[k]]
        binding = (shape > 0) & (quota < UNLIMITED)
        return int((quota[binding] // shape[binding]).min()) if binding.any() else UNLIMITED

    def am_allowance(self, k: int) -> int:
        """More containers of class ``k`` the AMs placed so far allow: executors stay within
        ``placed(a) * count(k) // count(a)`` for their AM class ``a`` (unlimited without one, or when ``a``
        wants nothing)."""
        compiled = self.compiled
        a = int(compiled.am_of[k])
        if a == NO_AM or compiled.count[a] == 0:
            return UNLIMITED
        placed_am = int(compiled.count[a] - self.left[a])
        placed = int(compiled.count[k] - self.left[k])
        return placed_am * int(compiled.count[k]) // int(compiled.count[a]) - placed

    def fits(self, k: int, nodes: IntArray) -> IntArray:
        """[len(nodes)] containers of class ``k`` each node's remaining capacity holds (labels ignored)."""
        need = self.compiled.need[k]
        asked = need > 0
        fits: IntArray = (self.cap[np.ix_(nodes, np.flatnonzero(asked))] // need[asked]).min(axis=1)
        return fits

    def first_fit(self, k: int, nodes: IntArray, limit: int) -> int:
        """Place up to ``limit`` containers of class ``k`` on ``nodes``, filling each in order; return how
        many."""
        return self.place(k, nodes, np.full(nodes.size, UNLIMITED, dtype=np.int64), limit)

    def place(self, k: int, nodes: IntArray, wanted: IntArray, limit: int) -> int:
        """Place up to ``wanted[i]`` containers of class ``k`` on ``nodes[i]``, at most ``limit`` in all,
        cutting whatever a constraint refuses (labels, cluster, reachability, capacity, links, quota, demand); return
        how many."""
        limit = min(limit, self.allowance(k))
        mask = self.compiled.label_ok(k)[nodes] & self.compiled.site_ok(k)[nodes]
        nodes, wanted = nodes[mask], wanted[mask]
        if limit <= 0 or nodes.size == 0:
            return 0
        take = np.minimum(wanted, self.fits(k, nodes))
        self._clip_by_links(k, nodes, take)
        before = np.cumsum(take) - take
        take = np.clip(limit - before, 0, take)
        self.commit(k, nodes, take)
        return int(take.sum())

    def _clip_by_links(self, k: int, nodes: IntArray, take: IntArray) -> None:
        """Cut ``take`` (in place) so that the containers at each remote site fit that site's link."""
        read = int(self.compiled.read[k])
        if read == 0:
            return
        sites = self.compiled.node_site[nodes]
        for s in np.unique(sites):
            link = int(self.compiled.link_of[k, s])
            if link < 0:
                continue
            at = sites == s
            fit = take[at]
            before = np.cumsum(fit) - fit
            take[at] = np.clip(int(self.link[link]) // read - before, 0, fit)

    def commit(self, k: int, nodes: IntArray, take: IntArray) -> None:
        """Record ``take[i]`` containers of class ``k`` on ``nodes[i]`` and charge every budget they use."""
        total = int(take.sum())
        if total == 0:
            return
        compiled = self.compiled
        self.cap[nodes] -= take[:, None] * compiled.need[k][None, :]
        self.counts[k, nodes] += take
        self.left[k] -= total
        t = compiled.team_of[k]
        capped = self.quota[t] < UNLIMITED
        self.quota[t, capped] -= total * compiled.shape[k, capped]
        if compiled.read[k] > 0:
            per_site = np.bincount(compiled.node_site[nodes], weights=take,
                                   minlength=len(compiled.site_names))
            for s in np.flatnonzero(per_site):
                link = int(compiled.link_of[k, s])
                if link >= 0:
                    self.link[link] -= int(per_site[s]) * int(compiled.read[k])


__all__ = ["Residual"]
