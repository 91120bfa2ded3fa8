"""Node labels: the broker's node classes as YARN partitions, kept in sync with the plan.

A YARN node carries at most one partition label, so the two independent properties placement cares about
(``disk``/``diskless``, ``stable``/``elastic``) cannot be two labels. The bridge uses one partition per node
class, combining them: ``disk-stable``, ``disk-elastic``, ``diskless-stable``, ``diskless-elastic``
(``Node.node_class``). A job asks for ``disk-stable || disk-elastic`` style placement through its queue's
accessible labels and its own label expressions; AMs go to the ``*-stable`` partitions.

Partitions are created non-exclusive (``exclusivity: false``, sent explicitly): an app without a label
expression may still use idle capacity of a partition, so that labelling every node does not starve the
default partition. Exclusivity is fixed when a label is created; a label that exists with the other
exclusivity is reported, not changed. Labels are never removed by the bridge (the RM refuses to remove a label
a queue uses, and an unused label costs nothing); unused ones are listed in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from broker.errors import PeerError
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.wire import RMNode, labels_of, nodes_of

EXCLUSIVE = False
"""Exclusivity of the partitions the bridge creates (see the module docstring)."""
REPLACE_CHUNK = 1000
"""Nodes per ``replace-node-to-labels`` request."""


def partition_of(labels: Iterable[str]) -> str | None:
    """The combined partition of a node with these placement labels (``{"disk", "stable"}`` ->
    ``disk-stable``).

    ``None`` when the labels do not say both properties: the node is then left in whatever partition it is.
    """
    have = set(labels)
    combined = [
        x
        for x in have
        if x.count("-") == 1 and set(x.split("-")) <= {"disk", "diskless", "stable", "elastic"}
    ]
    if len(combined) == 1:
        return combined[0]
    disk = "disk" if "disk" in have else "diskless" if "diskless" in have else None
    stable = "stable" if "stable" in have else "elastic" if "elastic" in have else None
    return f"{disk}-{stable}" if disk and stable else None


class LabelReport(BaseModel):
    """What the label sync found and did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    created: tuple[str, ...] = ()
    assigned: dict[str, str] = {}
    """NodeId -> the partition it was moved to."""
    exclusivity_conflicts: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    not_applied: dict[str, str] = {}
    """NodeId -> the label it still carries after the write (read back)."""
    error: str = ""


def label_writes(
    want: Mapping[str, str], rm_nodes: Mapping[str, RMNode], existing: Mapping[str, bool]
) -> tuple[list[WriteRequest], LabelReport]:
    """The writes giving every node in ``want`` (NodeId -> partition) its partition; the drift found."""
    missing = sorted(set(want.values()) - set(existing))
    moves = {
        node_id: label
        for node_id, label in sorted(want.items())
        if node_id in rm_nodes and rm_nodes[node_id].labels != (label,)
    }
    writes: list[WriteRequest] = []
    if missing:
        writes.append(
            WriteRequest(
                method="POST",
                path="/add-node-labels",
                body={"nodeLabelInfo": [{"name": m, "exclusivity": EXCLUSIVE} for m in missing]},
            )
        )
    items = list(moves.items())
    for start in range(0, len(items), REPLACE_CHUNK):
        body: dict[str, Any] = {
            "nodeToLabels": [
                {"nodeId": n, "labels": [lab]} for n, lab in items[start : start + REPLACE_CHUNK]
            ]
        }
        writes.append(WriteRequest(method="POST", path="/replace-node-to-labels", body=body))
    in_use = set(want.values()) | {lab for n in rm_nodes.values() for lab in n.labels}
    report = LabelReport(
        created=tuple(missing),
        assigned=moves,
        exclusivity_conflicts=tuple(
            sorted(lab for lab in set(want.values()) & set(existing) if existing[lab] != EXCLUSIVE)
        ),
        unused=tuple(sorted(set(existing) - in_use)),
    )
    return writes, report


async def read_labels(client: RMClient) -> dict[str, bool]:
    """The cluster's labels and their exclusivity."""
    return labels_of(await client.get("/get-node-labels"), client.peer)


async def apply_label_writes(
    client: RMClient, writes: list[WriteRequest], report: LabelReport
) -> LabelReport:
    """Send the writes in order, then read the nodes back; a refusal stops the rest and is reported."""
    for write in writes:
        try:
            await client.post(write.path, write.body)
        except PeerError as exc:
            return report.model_copy(update={"error": exc.message})
    if not report.assigned:
        return report
    now = {n.id: n.labels for n in nodes_of(await client.get("/nodes"), client.peer)}
    wrong = {
        node_id: ",".join(now.get(node_id, ()))
        for node_id, label in report.assigned.items()
        if now.get(node_id, ()) != (label,)
    }
    return report.model_copy(update={"not_applied": wrong})


__all__ = ["EXCLUSIVE", "LabelReport", "apply_label_writes", "label_writes", "partition_of", "read_labels"]
