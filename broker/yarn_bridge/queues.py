"""Queue capacity push: each team's runtime quota as CapacityScheduler queue capacities, through
scheduler-conf.

For every team bound to queues on the cluster (the plan's ``binding.yarn_queues[cluster]``, else the
configuration's ``team_queues``), each of its queues gets, in absolute resources:

- ``capacity`` (the guarantee): what the planner placed for the team at the cluster's site, at most its
  runtime quota, split evenly over the team's queues on this cluster (integer split, remainder to the first
  queues);
- ``maximum-capacity`` (the cap): the team's runtime quota, at most the plan's YARN capacity of this cluster,
  split the same way, and never below the guarantee;
- per partition ``p`` of the cluster's nodes: ``accessible-node-labels`` lists the partitions,
  ``accessible-node-labels.p.capacity`` is the queue's percent share of ``p`` among the managed queues under
  the same parent (weighted by their memory guarantee; integer percents summing to exactly 100, largest
  remainder first), ``accessible-node-labels.p.maximum-capacity`` is 100; root gets
  ``accessible-node-labels.p.capacity=100``. A deeper parent must already give its children access to the
  partitions (an operator sets that once);
- ``default-node-label-expression``: the stable partition chosen for the team's AMs (``am_placement``), when
  the cluster's ``am_placement`` is ``queue-default``. The RM refuses (400) a default label the queue cannot
  access or the cluster does not have; both hold here because the partitions exist before queues are synced
  and the queue is given access to every partition in the same change.

The change goes out in one ``sched-conf`` body, in the ``{"entry": [{"key", "value"}]}`` form (a plain object
is accepted by the RM and silently ignored): ``POST /scheduler-conf/validate`` first; a 400 leaves the RM as
it was and is reported with the RM's reason; then ``PUT /scheduler-conf``; then ``GET /scheduler-conf`` to
confirm every key, because the RM answers 200 to changes it did not apply.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from broker.errors import PeerError
from broker.model import Plan, Resources, total
from broker.model.resources import ZERO
from broker.yarn_bridge.am_placement import AmLabel
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.config import YarnCluster, check_queue_paths
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.resource import YarnResource
from broker.yarn_bridge.wire import conf_of

CS = "yarn.scheduler.capacity."
DEFAULT_LABEL = "default-node-label-expression"
"""The queue parameter that places the queue's AMs (and its other unlabelled containers), see ``am_placement``."""
_ABSOLUTE = re.compile(r"^\[([^\]]*)\]$")


class QueueReport(BaseModel):
    """What the queue sync found and did; keys are full keys (``yarn.scheduler.capacity.<path>.<param>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    drift: dict[str, tuple[str, str]] = {}
    """key -> (what the RM has, what the plan wants); ``""`` = not set."""
    added: tuple[str, ...] = ()
    validated: bool = False
    applied: bool = False
    not_applied: dict[str, tuple[str, str]] = {}
    """key -> (wanted, read back) after a 200."""
    error: str = ""
    am_labels: dict[str, AmLabel] = {}
    """Queue path -> the partition its ``default-node-label-expression`` places AMs on, and why."""


def team_queues(plan: Plan, cluster: YarnCluster) -> dict[str, tuple[str, ...]]:
    """Team -> its queue paths on ``cluster`` (plan binding first, configuration second)."""
    out: dict[str, tuple[str, ...]] = {}
    for i, team in enumerate(plan.teams):
        paths = team.binding.yarn_queues.get(cluster.name) or cluster.team_queues.get(team.team, ())
        check_queue_paths(paths, f"teams[{i}].binding.yarn_queues.{cluster.name}")
        if paths:
            out[team.team] = paths
    return out


def desired_params(
    plan: Plan,
    cluster: YarnCluster,
    partitions: Sequence[str],
    am_labels: Mapping[str, AmLabel] | None = None,
) -> dict[str, dict[str, str]]:
    """Queue path -> parameter -> value, for every queue the plan governs on ``cluster`` (see module doc);
    ``am_labels``: team -> its AMs' partition, one of ``partitions``."""
    queues = team_queues(plan, cluster)
    cluster_total = total([n.yarn for n in plan.nodes if n.cluster == cluster.name])
    out: dict[str, dict[str, str]] = {}
    guarantees: dict[str, YarnResource] = {}
    owner: dict[str, str] = {}
    for team in plan.teams:
        paths = queues.get(team.team)
        if not paths:
            continue
        placed: Resources = team.placed_by_cluster.get(cluster.name, ZERO)
        guarantee = placed.min(team.runtime_quota)
        cap = team.runtime_quota.min(cluster_total).max(guarantee)
        for path, low, high in zip(
            paths, _split(guarantee, len(paths)), _split(cap, len(paths)), strict=True
        ):
            guarantees[path] = low
            owner[path] = team.team
            out[path] = {"capacity": low.as_absolute(), "maximum-capacity": high.as_absolute()}
    if partitions:
        by_parent: dict[str, list[str]] = defaultdict(list)
        for path in out:
            by_parent[path.rsplit(".", 1)[0]].append(path)
        for parent, children in by_parent.items():
            shares = _percent_shares([guarantees[c].memory_mb for c in children])
            for child, share in zip(children, shares, strict=True):
                out[child]["accessible-node-labels"] = ",".join(partitions)
                am = (am_labels or {}).get(owner[child])
                if am is not None:
                    out[child][DEFAULT_LABEL] = am.partition
                for p in partitions:
                    out[child][f"accessible-node-labels.{p}.capacity"] = str(share)
                    out[child][f"accessible-node-labels.{p}.maximum-capacity"] = "100"
            if parent == "root":
                out.setdefault("root", {}).update(
                    {f"accessible-node-labels.{p}.capacity": "100" for p in partitions}
                )
    return out


def queue_change(
    desired: Mapping[str, Mapping[str, str]], conf: Mapping[str, str]
) -> tuple[dict[str, Any] | None, QueueReport]:
    """The ``sched-conf`` body that brings ``conf`` to ``desired`` (``None`` when nothing differs), and the
    drift.

    A queue whose parent does not exist refuses the whole change: it goes out as one atomic update or not at
    all.
    """
    drift: dict[str, tuple[str, str]] = {}
    adds: dict[str, dict[str, str]] = {}
    updates: dict[str, dict[str, str]] = {}
    for path, params in sorted(desired.items()):
        changed = {k: v for k, v in params.items() if not same_value(conf.get(f"{CS}{path}.{k}", ""), v)}
        drift.update({f"{CS}{path}.{k}": (conf.get(f"{CS}{path}.{k}", ""), v) for k, v in changed.items()})
        if not changed:
            continue
        if queue_exists(conf, path):
            updates[path] = changed
            continue
        parent = path.rsplit(".", 1)[0]
        if not queue_exists(conf, parent) and parent not in adds:
            return None, QueueReport(
                drift=drift, error=f"parent queue {parent} of {path} does not exist: create it first"
            )
        adds[path] = dict(params)
    if not drift:
        return None, QueueReport()
    body: dict[str, Any] = {}
    if adds:
        body["add-queue"] = [{"queue-name": p, "params": _entries(v)} for p, v in adds.items()]
    if updates:
        body["update-queue"] = [{"queue-name": p, "params": _entries(v)} for p, v in updates.items()]
    return body, QueueReport(drift=drift, added=tuple(adds))


def queue_writes(body: Mapping[str, Any]) -> list[WriteRequest]:
    """The two writes of a queue change: validate, then apply."""
    return [
        WriteRequest(method="POST", path="/scheduler-conf/validate", body=dict(body)),
        WriteRequest(method="PUT", path="/scheduler-conf", body=dict(body)),
    ]


async def read_conf(client: RMClient) -> dict[str, str]:
    """The RM's scheduler configuration as a flat map (needs an admin caller and a mutable store)."""
    return conf_of(await client.get("/scheduler-conf"), client.peer)


async def apply_queue_change(client: RMClient, body: Mapping[str, Any], report: QueueReport) -> QueueReport:
    """Validate, apply, read back (see module doc). Nothing is applied when validation fails."""
    try:
        await client.post("/scheduler-conf/validate", dict(body))
    except PeerError as exc:
        return report.model_copy(update={"error": f"validation refused: {exc.message}"})
    try:
        await client.put("/scheduler-conf", dict(body))
    except PeerError as exc:
        return report.model_copy(update={"validated": True, "error": f"update refused: {exc.message}"})
    conf = await read_conf(client)
    wrong = {
        key: (want, conf.get(key, ""))
        for key, (_have, want) in report.drift.items()
        if not same_value(conf.get(key, ""), want)
    }
    error = f"the RM answered 200 but did not apply {len(wrong)} key(s)" if wrong else ""
    return report.model_copy(
        update={"validated": True, "applied": not wrong, "not_applied": wrong, "error": error}
    )


def queue_exists(conf: Mapping[str, str], path: str) -> bool:
    """True when ``path`` is ``root`` or is listed in its parent's ``queues``."""
    if path == "root":
        return True
    parent, leaf = path.rsplit(".", 1)
    return leaf in (c.strip() for c in conf.get(f"{CS}{parent}.queues", "").split(",")) and queue_exists(
        conf, parent
    )


def same_value(have: str, want: str) -> bool:
    """Equal as the RM means it: absolute resources by their entries, numbers by value, else as text."""
    if have.strip() == want.strip():
        return True
    a, b = _absolute(have), _absolute(want)
    if a is not None and b is not None:
        return a == b
    try:
        return float(have) == float(want)
    except ValueError:
        return False


def _absolute(value: str) -> dict[str, str] | None:
    match = _ABSOLUTE.match(value.strip())
    if match is None:
        return None
    pairs = (p.strip().partition("=") for p in match[1].split(",") if p.strip())
    return {("memory" if k.strip() == "memory-mb" else k.strip()): v.strip() for k, _, v in pairs}


def _entries(params: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"entry": [{"key": k, "value": v} for k, v in params.items()]}


def _split(amount: Resources, parts: int) -> list[YarnResource]:
    """``amount`` in YARN units over ``parts`` queues: integer shares, remainders to the first ones."""
    whole = YarnResource.from_resources(amount)
    return [
        YarnResource(
            memory_mb=whole.memory_mb // parts + (i < whole.memory_mb % parts),
            vcores=whole.vcores // parts + (i < whole.vcores % parts),
        )
        for i in range(parts)
    ]


def _percent_shares(weights: Sequence[int]) -> list[int]:
    """Integer percents proportional to ``weights`` summing to exactly 100 (equal when every weight is 0)."""
    weights = list(weights) if any(weights) else [1] * len(weights)
    whole = sum(weights)
    shares = [w * 100 // whole for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(weights[i] * 100 % whole), i))
    for i in by_remainder[: 100 - sum(shares)]:
        shares[i] += 1
    return shares


__all__ = [
    "DEFAULT_LABEL",
    "QueueReport",
    "apply_queue_change",
    "desired_params",
    "queue_change",
    "queue_exists",
    "queue_writes",
    "read_conf",
    "same_value",
    "team_queues",
]
