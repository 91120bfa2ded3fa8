"""Where each team's ApplicationMasters go: one stable partition per team, set as its queues' default label.

What Hadoop offers (checked against the CapacityScheduler and RMAppManager sources): there is **no** queue
parameter that applies to AM containers only. The AM's ANY request takes, in this order, the job's own AM label
expression (``am-container-node-label-expression``, ``spark.yarn.am.nodeLabelExpression``,
``mapreduce.job.am.node-label-expression``), the application's label expression, then the queue's
``default-node-label-expression``. Hadoop 3.4 adds a cluster-wide AM default
(``yarn.resourcemanager.node-labels.am.default-node-label-expression``), but it lives in ``yarn-site.xml``, is
read when the RM starts and cannot be changed through the REST API. So the one AM placement the bridge can push
and verify is the queue's ``yarn.scheduler.capacity.<queue-path>.default-node-label-expression``, through the
same validate, PUT, read-back as the capacities. It applies to every container of the queue that names no label
(workers included): those run inside the team's share of that stable partition; a job whose workers should use
elastic capacity names the elastic partition for them (``spark.yarn.executor.nodeLabelExpression``). The
``am_placement: off`` setting leaves the parameter alone.

A resource request carries at most one label, so a queue can point its AMs at one partition. For each team the
bridge picks, among the stable partitions of the cluster's planned nodes (``disk-stable``, ``diskless-stable``):

1. the one where the plan placed most of the team's AM containers (the planner puts AMs on stable capacity only;
   the queue should send them where it planned them);
2. on a tie (including a team with no AM planned), ``disk-stable`` when the team is shuffle-heavy, that is when
   more of its YARN worker containers were placed on ``disk-*`` nodes than on ``diskless-*`` nodes (an AM of
   such a job, an uber MapReduce task or a Spark driver in cluster mode, may write local data too);
3. then the one with the most planned YARN memory on the cluster (most room for AMs);
4. then ``disk-stable`` before ``diskless-stable`` (a disk node can run any container).

A cluster without stable partitions gets no AM label: there is nothing stable to point at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from broker.model import NodePlan, Plan, Sink

STABLE_PARTITIONS = ("disk-stable", "diskless-stable")
"""The partitions an AM may run on, in the order of the last tie-break."""


class AmLabel(BaseModel):
    """The partition chosen for one team's AMs, and why (for the sync report)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str
    reason: str


def am_labels(
    plan: Plan, nodes: Sequence[NodePlan], partition: Callable[[NodePlan], str | None]
) -> dict[str, AmLabel]:
    """Team -> the stable partition for its AMs on the cluster whose planned ``nodes`` these are (see the
    module docstring); teams are those of ``plan``; no entry when the nodes have no stable partition."""
    by_node = {n.node: p for n in nodes if (p := partition(n)) is not None}
    stable = [p for p in STABLE_PARTITIONS if p in by_node.values()]
    if not stable:
        return {}
    memory: Counter[str] = Counter()
    ams: dict[str, Counter[str]] = {}
    disk_workers: Counter[str] = Counter()
    for node in nodes:
        where = by_node.get(node.node)
        if where is None:
            continue
        memory[where] += node.yarn.memory_mib
        for placed in node.placements:
            if placed.sink is not Sink.YARN or placed.count == 0:
                continue
            if placed.is_am:
                ams.setdefault(placed.team, Counter())[where] += placed.count
            else:
                disk_workers[placed.team] += placed.count if where.startswith("disk-") else -placed.count
    out: dict[str, AmLabel] = {}
    for team in plan.teams:
        planned = ams.get(team.team, Counter())
        shuffle_heavy = disk_workers[team.team] > 0
        best = _choose(stable, planned, shuffle_heavy, memory)
        out[team.team] = AmLabel(partition=best, reason=_reason(best, stable, planned, shuffle_heavy, memory))
    return out


def _choose(stable: list[str], planned: Counter[str], shuffle_heavy: bool, memory: Counter[str]) -> str:
    """Rules 1-4 of the module docstring, as one ranking."""
    return max(
        stable,
        key=lambda p: (planned[p], shuffle_heavy and p == "disk-stable", memory[p], -stable.index(p)),
    )


def _reason(
    best: str, stable: list[str], planned: Counter[str], shuffle_heavy: bool, memory: Counter[str]
) -> str:
    """Which rule of the module docstring decided, in words."""
    others = [p for p in stable if p != best]
    if planned[best] and all(planned[best] > planned[p] for p in others):
        return f"{planned[best]} AM container(s) planned there"
    if shuffle_heavy and best == "disk-stable" and others:
        return "shuffle-heavy team (workers placed mostly on disk nodes)"
    if len(stable) == 1:
        return "the only stable partition of the cluster"
    if all(memory[best] > memory[p] for p in others):
        return "most planned YARN memory among the stable partitions"
    return "tie: disk-stable first"


__all__ = ["STABLE_PARTITIONS", "AmLabel", "am_labels"]
