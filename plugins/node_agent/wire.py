"""What a node agent and the broker say to each other over gRPC, without protoc: JSON messages (orjson) validated by
pydantic at both ends.

One method, ``/broker.agent.v1.Agents/Report``, **bidirectional streaming**: the agent writes a ``NodeSample`` every
interval on one long-lived stream, and the broker answers each with a ``ReportAck``. Bidirectional rather than
client-streaming because the per-sample ack is what tells the agent the broker is really receiving: a client stream
answers only when it ends, so an agent talking to a broker that stopped reading (a hung process, a half-open
connection) would never know; with acks it notices within a few intervals and reconnects.

The stream carries the bearer token in its metadata (``authorization: Bearer <token>``). A payload that is not a
valid sample ends the stream with ``INVALID_ARGUMENT`` and a message naming the field (``offline[3].cpu_milli: ...``);
a missing or wrong token with ``UNAUTHENTICATED``. A replica that is not the leader ends every stream
``UNAVAILABLE`` with details beginning ``NOT_LEADER``.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.model import NAME_PATTERN, Sink
from broker.model.quantity import UNLIMITED
from broker.model.validation import describe

SERVICE = "broker.agent.v1.Agents"
"""The gRPC service name."""
REPORT = "Report"
"""The one method: a bidirectional stream of samples (agent -> broker) and acks (broker -> agent)."""
REPORT_PATH = f"/{SERVICE}/{REPORT}"
"""The method's full path, as a channel calls it."""
MAX_CONTAINERS = 10_000
"""Most offline containers one sample may list (a node runs a few hundred at most)."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message either side accepts: a full sample of ``MAX_CONTAINERS`` is about 2 MB of JSON."""
CONTAINER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$"
"""A YARN container id (``container_e17_1410901177871_0001_01_000005``) or a pod UID."""
NOT_LEADER = "not the leader"
"""How the details of a follower's refusal begin (status ``UNAVAILABLE``): the replica is up but does not take
samples. The agent reconnects quickly on it, since its next connection may reach the leader through the Service;
other ``UNAVAILABLE`` answers (no replica reachable) get the slow backoff."""

Amount = Annotated[int, Field(ge=0, le=UNLIMITED)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class OfflineContainer(BaseModel):
    """One running offline container on the node and what it uses right now.

    ``container`` is the YARN container id for ``Sink.YARN`` and the pod UID for ``Sink.KUBERNETES``; ``started_s``
    when it started (Unix seconds; see ``plugins.node_agent.cgroup`` for how it is read); ``is_am`` whether it is
    an ApplicationMaster / driver (the kill score spares those last).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sink: Sink
    container: str = Field(pattern=CONTAINER_PATTERN)
    cpu_milli: Amount
    memory_mib: Amount
    started_s: Seconds
    is_am: bool = False


class NodeSample(BaseModel):
    """One node's figures at ``sampled_at_s`` (Unix seconds, the agent's clock).

    ``seq`` counts samples on the agent's current stream (from 0), so the broker sees gaps and restarts.
    ``online_*`` is the node's usage minus its offline containers' (never negative); ``capacity_*`` what the node
    has (CPUs x 1000, MemTotal).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    node: str = Field(pattern=NAME_PATTERN)
    seq: Annotated[int, Field(ge=0)]
    sampled_at_s: Seconds
    capacity_cpu_milli: Amount
    capacity_memory_mib: Amount
    online_cpu_milli: Amount
    online_memory_mib: Amount
    offline: tuple[OfflineContainer, ...] = Field(default=(), max_length=MAX_CONTAINERS)


class ReportAck(BaseModel):
    """The broker's answer to one sample: which one it took and when (its clock), so the agent can see the lag."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    node: str = Field(pattern=NAME_PATTERN)
    seq: Annotated[int, Field(ge=0)]
    received_at_s: Seconds


def encode(message: BaseModel) -> bytes:
    """A message's wire form (the gRPC serializer of both sides)."""
    return orjson.dumps(message.model_dump(mode="json"))


def decode_sample(data: bytes) -> NodeSample:
    """Read a sample off the wire; ``InputError`` naming the field when it is not one."""
    try:
        return NodeSample.model_validate_json(data)
    except ValidationError as exc:
        raise describe(exc) from None


def decode_ack(data: bytes) -> ReportAck:
    """Read an ack off the wire; ``InputError`` naming the field when it is not one."""
    try:
        return ReportAck.model_validate_json(data)
    except ValidationError as exc:
        raise describe(exc) from None


__all__ = [
    "CONTAINER_PATTERN",
    "MAX_CONTAINERS",
    "MAX_MESSAGE_BYTES",
    "NOT_LEADER",
    "REPORT",
    "REPORT_PATH",
    "SERVICE",
    "NodeSample",
    "OfflineContainer",
    "ReportAck",
    "decode_ack",
    "decode_sample",
    "encode",
]
