"""Node capacity push: the plan's YARN capacity per node, written to the RM and confirmed by reading it back.

``POST /nodes/{id}/resource`` with the nested body is not done when it answers 200: the answer may report the
total as it was before the update, and a malformed body is accepted and zeroes the node. A push counts as
applied only when ``totalResource`` read back afterwards equals what was sent. Read-back uses one ``GET
/nodes/{id}`` per node for small batches and one ``GET /nodes`` for large ones (a 5,000-node list is one
request instead of 5,000).

Shrinks are the safety direction, so they travel on their own: ``push_shrinks`` sends only the shrinking
targets as one batch and verifies them, and ``push_nodes`` runs that batch to the end (read-back included)
before it sends any growth. A caller that already knows a decision is a shrink (the guard, or a sync comparing
the plan with its cached view of the RM) calls ``push_shrinks`` without reading the RM first.

Each batch is one ``RMClient.post_batch``: pipelined over a few keep-alive connections with at most
``YarnCluster.concurrency`` requests in flight. Nodes whose push failed transiently (after the client's own
retries) or whose read-back disagreed are pushed again, up to ``rounds`` times; the others are applied
regardless. A refused push (404 unknown node, 500 LOST node) is reported and not repeated within the batch;
the next reconcile tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from broker.errors import PeerError, TemporaryPeerError
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.resource import Change, YarnResource
from broker.yarn_bridge.wire import node_of, nodes_of

LIST_READBACK_FROM = 32
"""From this many pushed nodes on, read back with one ``GET /nodes`` instead of one request per node."""


class NodeStatus(StrEnum):
    """What became of one node in a sync."""

    APPLIED = "applied"
    """Pushed, and the read-back equals what was sent."""
    FAILED = "failed"
    """Refused, unreachable after retries, or read back different."""
    PLANNED = "planned"
    """Dry run: would be pushed."""
    HELD = "held"
    """Growth below the anti-churn threshold: not pushed."""
    SAME = "same"
    """Already as planned: nothing sent."""


class NodeTarget(BaseModel):
    """One node's wanted YARN capacity beside what the RM has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    node_id: str
    want: YarnResource
    have: YarnResource
    change: Change


class NodeOutcome(BaseModel):
    """The result for one node: what was wanted, what the RM reports afterwards, and any error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    node_id: str
    change: Change
    status: NodeStatus
    want: YarnResource
    before: YarnResource
    read_back: YarnResource | None = None
    attempts: int = 0
    error: str = ""

    @classmethod
    def of(cls, target: NodeTarget, status: NodeStatus, attempts: int = 0, read_back: YarnResource | None = None,
           error: str = "") -> NodeOutcome:
        """The outcome for ``target`` (``before`` is what the RM had, ``want`` what the plan asks)."""
        return cls(node=target.node, node_id=target.node_id, change=target.change, status=status, want=target.want,
                   before=target.have, read_back=read_back, attempts=attempts, error=error)


def resource_path(node_id: str) -> str:
    """The node-resource endpoint of ``node_id`` (the ``:`` stays; everything else is escaped)."""
    return f"/nodes/{quote(node_id, safe=':')}/resource"


def resource_body(want: YarnResource, overcommit_timeout_ms: int) -> dict[str, Any]:
    """The nested body the RM parses (a flat ``{"memory", "vcores"}`` body would zero the node)."""
    return {"resource": want.as_body(), "overCommitTimeout": overcommit_timeout_ms}


def write_request(target: NodeTarget, overcommit_timeout_ms: int) -> WriteRequest:
    """The request that pushes ``target``."""
    return WriteRequest(
        method="POST",
        path=resource_path(target.node_id),
        body=resource_body(target.want, overcommit_timeout_ms),
    )


def push_order(targets: Sequence[NodeTarget]) -> list[NodeTarget]:
    """Shrinks first, then growth; held and unchanged nodes are not pushed."""
    pushed = [t for t in targets if t.change in (Change.SHRINK, Change.GROW)]
    return sorted(pushed, key=lambda t: t.change is not Change.SHRINK)


async def push_nodes(client: RMClient, targets: Sequence[NodeTarget], rounds: int = 3) -> list[NodeOutcome]:
    """Push every shrinking target, verified, then every growing one (see the module docstring)."""
    shrunk = await push_shrinks(client, targets, rounds)
    grown = await _push(client, [t for t in targets if t.change is Change.GROW], rounds)
    return shrunk + grown


async def push_shrinks(
    client: RMClient, targets: Sequence[NodeTarget], rounds: int = 3
) -> list[NodeOutcome]:
    """Push only the shrinking targets, as one batch, and verify them by read-back; the others are left."""
    return await _push(client, [t for t in targets if t.change is Change.SHRINK], rounds)


async def _push(client: RMClient, targets: Sequence[NodeTarget], rounds: int) -> list[NodeOutcome]:
    """One batch: post, read back, post again what failed transiently or read back wrong."""
    timeout_ms = client.cluster.overcommit_timeout_ms
    pending = list(targets)
    attempts: dict[str, int] = {}
    outcomes: dict[str, NodeOutcome] = {}
    for _round in range(rounds):
        if not pending:
            break
        errors = await _post_all(client, pending, timeout_ms)
        read = await _read_back(client, [t for t in pending if t.node_id not in errors])
        retry: list[NodeTarget] = []
        for target in pending:
            attempts[target.node_id] = attempts.get(target.node_id, 0) + 1
            got = read.get(target.node_id)
            error = errors.get(target.node_id)
            if error is None and got == target.want:
                outcomes[target.node_id] = NodeOutcome.of(target, NodeStatus.APPLIED, attempts[target.node_id], got)
                continue
            if error is None:
                message = (
                    f"read back {got} after the push, expected {target.want}"
                    if got is not None
                    else "node missing from the read-back"
                )
            else:
                message = error.message
            outcomes[target.node_id] = NodeOutcome.of(target, NodeStatus.FAILED, attempts[target.node_id], got, message)
            if error is None or isinstance(error, TemporaryPeerError):
                retry.append(target)
        pending = retry
    return [outcomes[t.node_id] for t in targets]




async def _post_all(client: RMClient, targets: Sequence[NodeTarget], timeout_ms: int) -> dict[str, PeerError]:
    """POST every target in one pipelined batch; the errors by NodeId."""
    errors = await client.post_batch(
        [(resource_path(t.node_id), resource_body(t.want, timeout_ms)) for t in targets]
    )
    return {t.node_id: e for t, e in zip(targets, errors, strict=True) if e is not None}


async def _read_back(client: RMClient, targets: Sequence[NodeTarget]) -> dict[str, YarnResource]:
    """``totalResource`` per NodeId as the RM reports it now; nodes that could not be read are left out."""
    if not targets:
        return {}
    if len(targets) >= LIST_READBACK_FROM:
        try:
            return {n.id: n.total for n in nodes_of(await client.get("/nodes"), client.peer)}
        except PeerError:
            return {}
    gate = asyncio.Semaphore(client.cluster.concurrency)
    read: dict[str, YarnResource] = {}

    async def one(target: NodeTarget) -> None:
        async with gate:
            try:
                data = await client.get(f"/nodes/{quote(target.node_id, safe=':')}")
                read[target.node_id] = node_of(
                    data.get("node") if isinstance(data, dict) else None, client.peer
                ).total
            except PeerError:
                pass

    await asyncio.gather(*(one(t) for t in targets))
    return read


__all__ = [
    "LIST_READBACK_FROM",
    "NodeOutcome",
    "NodeStatus",
    "NodeTarget",
    "push_nodes",
    "push_order",
    "push_shrinks",
    "resource_body",
    "resource_path",
    "write_request",
]
