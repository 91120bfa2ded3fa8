"""Why demand stayed unmet, and what would help.

The final plan is *maximal*: every pass ends with a first-fit over all open demand, so for each class still
short no node can take one more container. The explanation asks, on what is left after the plan, which
constraint is the first to refuse that container, in this order:

1. **quota**: the team's remaining runtime quota holds no container of the shape;
2. **am**: the class's AM class (``am_class``) is short, and executors are held to the share of AMs placed;
   the AM class has its own explanation;
3. **capacity**: no node, whatever its labels or site, has room for one (counting the NIC separately: room in
   every dimension but the NIC is **bandwidth**);
4. **label**: nodes with room exist, but none carries the label the class needs (``stable`` for AMs, ``disk``
   for shuffle writers) or, for a class tied to a cluster, none of them is in that cluster, even though other
   clusters have room (``cluster`` is a restriction like a label; a cluster without nodes is explained here too);
5. **bandwidth**: labelled nodes with room exist, but only at sites whose link to the data is missing or full.

``would_help`` quantifies the fix: the quota, capacity or labelled capacity the missing containers need, and
for bandwidth the link capacity that the room left at remote sites could actually use. When the optimiser ran out
of time and the greedy plan was used, the binding is ``time_limit`` and the detail still names the constraint found.
"""

from __future__ import annotations

import numpy as np

from broker.model import UNLIMITED, Binding, Explanation, Resources
from broker.scheduler.compiled import NETWORK, UNREACHABLE, Compiled, IntArray
from broker.scheduler.residual import Residual


def explain(state: Residual, *, timed_out: bool) -> tuple[Explanation, ...]:
    """One explanation per class with unmet demand, in class order."""
    out = []
    compiled = state.compiled
    for k in np.flatnonzero(state.left > 0).tolist():
        binding, detail, would_help = _diagnose(state, k)
        if timed_out:
            binding = Binding.TIME_LIMIT
            detail = f"the optimiser hit its time limit (greedy plan used); {detail}"
        item = compiled.problem.demand.classes[k]
        out.append(Explanation(demand_class=item.name, team=item.team, wanted=item.count,
                               placed=item.count - int(state.left[k]), binding=binding, detail=detail,
                               would_help=would_help))
    return tuple(out)


def _diagnose(state: Residual, k: int) -> tuple[Binding, str, str]:
    compiled = state.compiled
    item = compiled.problem.demand.classes[k]
    missing = int(state.left[k])
    if state.quota_allowance(k) <= 0:
        return _quota(state, k, missing)
    if state.am_allowance(k) <= 0:
        return _am(state, k, missing)
    everywhere = np.arange(compiled.n_nodes)
    room = state.fits(k, everywhere) >= 1
    if not room.any():
        if _fits_without_nic(state, k).any():
            return (Binding.BANDWIDTH, "nodes have room but their NIC budget is used up",
                    f"{missing * int(compiled.need[k, NETWORK])} Mbit/s more NIC budget on eligible nodes")
        return (Binding.CAPACITY, "no node has room for one more container",
                f"{_amount(item.shape, missing)} more lendable capacity on {_eligible(compiled, k)}")
    labelled = room & compiled.label_ok(k)
    if not labelled.any():
        return (Binding.LABEL, _refused(compiled, k),
                f"{_amount(item.shape, missing)} of lendable capacity on {_eligible(compiled, k)}")
    sites = np.unique(compiled.node_site[labelled]).tolist()
    links = []
    for s in sites:
        link = int(compiled.link_of[k, s])
        site = compiled.site_names[s]
        if link == UNREACHABLE:
            links.append(f"no link between {item.data_site} and {site}")
        elif link >= 0:
            a, b = compiled.link_ends[link]
            links.append(f"link {a}<->{b} has {int(state.link[link])} Mbit/s free")
    # Bandwidth would place only what the remote room holds: asking for the whole backlog's reads would name
    # a link size that capacity could never use (terabits for a queue of thousands).
    placeable = min(missing, int(state.fits(k, np.flatnonzero(labelled)).sum()))
    return (Binding.BANDWIDTH,
            f"nodes with room are remote from the data at {item.data_site}: " + "; ".join(links),
            f"{placeable * item.read_mbps} Mbit/s more on a link from {item.data_site} would place "
            f"{placeable} of the {missing} missing")


def _quota(state: Residual, k: int, missing: int) -> tuple[Binding, str, str]:
    compiled = state.compiled
    item = compiled.problem.demand.classes[k]
    if item.team not in compiled.problem.quota.teams:
        return (Binding.QUOTA, f"team {item.team} has no runtime quota",
                f"a runtime quota of at least {_amount(item.shape, missing)} for {item.team}")
    t = int(compiled.team_of[k])
    wanted = compiled.shape[k] * missing
    short = np.where((compiled.shape[k] > 0) & (state.quota[t] < UNLIMITED),
                     np.maximum(wanted - state.quota[t], 0), 0)
    return (Binding.QUOTA, f"team {item.team}'s runtime quota is used up",
            f"raise {item.team}'s runtime quota by {Resources.exact(*(int(x) for x in short))}")


def _am(state: Residual, k: int, missing: int) -> tuple[Binding, str, str]:
    compiled = state.compiled
    a = int(compiled.am_of[k])
    am = compiled.problem.demand.classes[a]
    placed_am = am.count - int(state.left[a])
    short = am.count - placed_am
    return (Binding.AM, f"only {placed_am} of {am.count} AMs of {am.name} are placed, and executors follow "
                        f"their AMs",
            f"{short} more {am.name} AMs placed (see its explanation) for the {missing} executors")


def _fits_without_nic(state: Residual, k: int) -> IntArray:
    need = state.compiled.need[k].copy()
    need[NETWORK] = 0
    asked = need > 0
    fits: IntArray = (state.cap[:, asked] // need[asked]).min(axis=1) >= 1
    return fits


def _labels(compiled: Compiled, k: int) -> str:
    """The labels class ``k`` needs, joined (``stable+disk``); empty for none."""
    return "+".join(label for label, needed in (("stable", compiled.is_am[k]), ("disk", compiled.requires_disk[k]))
                    if needed)


def _eligible(compiled: Compiled, k: int) -> str:
    """The nodes class ``k`` may use, in words: ``any nodes``, ``stable nodes``, ``disk nodes of cluster c``."""
    cluster = compiled.problem.demand.classes[k].cluster
    labels = _labels(compiled, k)
    if cluster is None:
        return f"{labels or 'any'} nodes"
    return f"{labels} nodes of cluster {cluster}".lstrip()


def _refused(compiled: Compiled, k: int) -> str:
    """Why the nodes with room do not take class ``k``: their labels or, for a class tied to a cluster, that only
    that cluster's nodes may and none of them has room (or the cluster has no nodes at all)."""
    cluster = compiled.problem.demand.classes[k].cluster
    if cluster is None:
        return f"nodes with room are not {_labels(compiled, k)}"
    has_nodes = bool((compiled.node_cluster == compiled.cluster_of[k]).any())
    return (f"only {_eligible(compiled, k)} may run it, and "
            + ("none of them has room" if has_nodes else f"cluster {cluster} has no nodes"))


def _amount(shape: Resources, count: int) -> Resources:
    return shape * count


__all__ = ["explain"]
