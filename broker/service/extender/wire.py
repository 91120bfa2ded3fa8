"""The ``k8s.io/kube-scheduler/extender/v1`` wire types, read from bytes with orjson and written back
byte-compatible.

Why not pydantic here: a filter body carries a full Pod (managedFields and all) and up to thousands of node
names, and the extender sits inside every scheduling cycle. Decoding with orjson and picking out the few
fields the decisions use costs a fraction of validating the whole document, and everything the decisions do
not read is kept as the raw object, so that the ``nodeCacheCapable: false`` answer returns the scheduler's own
Node objects.

What the scheduler's Go decoder accepts, we accept: keys of the extender types are the Go field names matched
case-insensitively (``NodeNames``, ``nodenames``), absent pointers arrive as ``null``, unknown keys are
ignored. What it would reject (a list that is not a list, a name that is not a string) is an ``InputError``
naming the field, which the HTTP layer answers with a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from broker.errors import InputError

MAX_NODES = 100_000
"""Most candidate nodes accepted in one request (the scheduler sends at most the cluster's node count)."""
MAX_VICTIMS = 100_000
"""Most victim pods accepted in one preemption request, over all nodes."""

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    """``ExtenderArgs``: the pod and its candidate nodes, by name and/or as Node objects.

    ``node_names`` is set when the scheduler is ``nodeCacheCapable``; ``nodes`` (raw Node objects) otherwise;
    ``candidates`` is every candidate name in request order, from whichever list was sent.
    """

    pod: JsonObject
    node_names: tuple[str, ...] | None
    nodes: tuple[JsonObject, ...] | None
    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Victim:
    """One pod the scheduler proposes to evict: always its UID, and the full Pod when it was sent."""

    uid: str
    pod: JsonObject | None


@dataclass(frozen=True, slots=True)
class NodeVictims:
    """The victims the scheduler proposes on one node, with its count of PodDisruptionBudget violations."""

    pods: tuple[Victim, ...]
    num_pdb_violations: int


@dataclass(frozen=True, slots=True)
class PreemptionArgs:
    """``ExtenderPreemptionArgs``: the preemptor and, per candidate node, the victims the scheduler chose."""

    pod: JsonObject
    nodes: dict[str, NodeVictims]


@dataclass(frozen=True, slots=True)
class BindingArgs:
    """``ExtenderBindingArgs``: bind pod ``namespace/name`` (``uid``) to ``node``."""

    pod_name: str
    pod_namespace: str
    pod_uid: str
    node: str


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What the filter decided, before encoding: names that pass, a reason for every name that does not."""

    passed: tuple[str, ...]
    failed: dict[str, str]
    unresolvable: dict[str, str]
    error: str = ""


# --- reading ------------------------------------------------------------------------------------------------


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError("(body)", f"not valid JSON: {exc}") from None


def _fields(obj: Any, where: str, names: Iterable[str]) -> dict[str, Any]:
    """The Go-named fields of ``obj``, matched case-insensitively as Go's decoder does (the last key wins)."""
    if not isinstance(obj, dict):
        raise InputError(where or "(body)", f"expected a JSON object, got {_kind(obj)}")
    wanted = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = wanted.get(key.lower())
        if name is not None:
            out[name] = value
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _pod(value: Any, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise InputError(where, f"expected a Pod object, got {_kind(value)}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InputError(where, f"expected a list of node names, got {_kind(value)}")
    if len(value) > MAX_NODES:
        raise InputError(where, f"{len(value)} names; the limit is {MAX_NODES}")
    if not set(map(type, value)) <= {str}:  # one C-level pass; the loop below only finds the culprit
        for i, name in enumerate(value):
            if type(name) is not str:
                raise InputError(f"{where}[{i}]", f"expected a node name, got {_kind(name)}")
    return tuple(value)


def node_name(node: Any, where: str) -> str:
    """The ``metadata.name`` of a Node object."""
    if not isinstance(node, dict):
        raise InputError(where, f"expected a Node object, got {_kind(node)}")
    meta = node.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}.metadata.name", "every Node needs a name")
    return name


def _node_list(value: Any, where: str) -> tuple[tuple[JsonObject, ...], tuple[str, ...]] | None:
    if value is None:
        return None
    fields = _fields(value, where, ("Items",))
    items = fields.get("Items")
    if items is None:
        return (), ()
    if not isinstance(items, list):
        raise InputError(f"{where}.items", f"expected a list of Node objects, got {_kind(items)}")
    if len(items) > MAX_NODES:
        raise InputError(f"{where}.items", f"{len(items)} nodes; the limit is {MAX_NODES}")
    names = tuple(node_name(item, f"{where}.items[{i}]") for i, item in enumerate(items))
    return tuple(items), names


def read_extender_args(body: bytes) -> ExtenderArgs:
    """Read an ``ExtenderArgs`` body (the filter and prioritize requests)."""
    fields = _fields(_load(body), "", ("Pod", "Nodes", "NodeNames"))
    pod = _pod(fields.get("Pod"), "Pod")
    node_names = _names(fields.get("NodeNames"), "NodeNames")
    node_list = _node_list(fields.get("Nodes"), "Nodes")
    candidates: tuple[str, ...] = node_names or ()
    nodes: tuple[JsonObject, ...] | None = None
    if node_list is not None:
        nodes, listed = node_list
        candidates = tuple(dict.fromkeys(candidates + listed)) if node_names else listed
    return ExtenderArgs(pod=pod, node_names=node_names, nodes=nodes, candidates=candidates)


def _int(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(where, f"expected an integer, got {_kind(value)}")
    return value


def _victims(value: Any, where: str, read: Callable[[Any, str], Victim]) -> NodeVictims:
    """A ``Victims`` / ``MetaVictims`` object: its ``Pods`` read one by one with ``read``."""
    if value is None:
        return NodeVictims((), 0)
    fields = _fields(value, where, ("Pods", "NumPDBViolations"))
    pods = fields.get("Pods") or []
    if not isinstance(pods, list):
        raise InputError(f"{where}.Pods", f"expected a list, got {_kind(pods)}")
    out = tuple(read(item, f"{where}.Pods[{i}]") for i, item in enumerate(pods))
    return NodeVictims(out, _int(fields.get("NumPDBViolations"), f"{where}.NumPDBViolations"))


def _meta_victim(item: Any, where: str) -> Victim:
    """A ``MetaPod``: only its UID."""
    uid = _fields(item, where, ("UID",)).get("UID")
    if not isinstance(uid, str) or not uid:
        raise InputError(f"{where}.UID", "every victim needs a UID")
    return Victim(uid, None)


def _full_victim(item: Any, where: str) -> Victim:
    """A full victim ``Pod`` (nodeCacheCapable: false), keyed by its ``metadata.uid``."""
    pod = _pod(item, where)
    meta = pod.get("metadata")
    uid = meta.get("uid", "") if isinstance(meta, dict) else ""
    if not isinstance(uid, str):
        raise InputError(f"{where}.metadata.uid", f"expected a string, got {_kind(uid)}")
    return Victim(uid, pod)


def _meta_victims(value: Any, where: str) -> NodeVictims:
    return _victims(value, where, _meta_victim)


def _full_victims(value: Any, where: str) -> NodeVictims:
    return _victims(value, where, _full_victim)


def _victim_map(value: Any, where: str, read: Callable[[Any, str], NodeVictims]) -> dict[str, NodeVictims]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(where, f"expected an object of node name to victims, got {_kind(value)}")
    return {name: read(victims, f"{where}.{name}") for name, victims in value.items()}


def read_preemption_args(body: bytes) -> PreemptionArgs:
    """Read an ``ExtenderPreemptionArgs`` body.

    With ``nodeCacheCapable: false`` the scheduler sends full victim Pods (``NodeNameToVictims``); with
    ``true``, only UIDs (``NodeNameToMetaVictims``). When both name a node (as in upstream's own fixture), the
    lists must pair up one to one: the UIDs come from the meta list, the facts from the Pods.
    """
    fields = _fields(_load(body), "", ("Pod", "NodeNameToVictims", "NodeNameToMetaVictims"))
    pod = _pod(fields.get("Pod"), "Pod")
    nodes = _victim_map(fields.get("NodeNameToMetaVictims"), "NodeNameToMetaVictims", _meta_victims)
    full_map = _victim_map(fields.get("NodeNameToVictims"), "NodeNameToVictims", _full_victims)
    for name, full in full_map.items():
        meta = nodes.get(name)
        if meta is None:
            nodes[name] = full
        elif len(meta.pods) != len(full.pods):
            raise InputError(f"NodeNameToVictims.{name}", "lists a different number of pods than "
                                                          f"NodeNameToMetaVictims.{name}")
        else:
            pods = tuple(Victim(m.uid, f.pod) for m, f in zip(meta.pods, full.pods, strict=True))
            nodes[name] = NodeVictims(pods, meta.num_pdb_violations)
    if sum(len(v.pods) for v in nodes.values()) > MAX_VICTIMS:
        raise InputError("NodeNameToVictims", f"more than {MAX_VICTIMS} victims")
    return PreemptionArgs(pod=pod, nodes=nodes)


def read_binding_args(body: bytes) -> BindingArgs:
    """Read an ``ExtenderBindingArgs`` body; the pod's name and namespace and the node must be given (the
    Kubernetes API refuses a binding without them), the UID may be empty."""
    fields = _fields(_load(body), "", ("PodName", "PodNamespace", "PodUID", "Node"))
    values: dict[str, str] = {}
    for name in ("PodName", "PodNamespace", "PodUID", "Node"):
        value = fields.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InputError(name, f"expected a string, got {_kind(value)}")
        if not value and name != "PodUID":
            raise InputError(name, "must not be empty")
        values[name] = value
    return BindingArgs(values["PodName"], values["PodNamespace"], values["PodUID"], values["Node"])


# --- writing ------------------------------------------------------------------------------------------------


def write_filter_result(args: ExtenderArgs, result: FilterResult) -> bytes:
    """Encode an ``ExtenderFilterResult`` answering in the form(s) the request used.

    Names go back in ``NodeNames`` when names were sent, Node objects in ``Nodes`` when objects were sent;
    every returned name is one the scheduler sent, as it requires.
    """
    passed = set(result.passed)
    names = None if args.node_names is None else [n for n in args.node_names if n in passed]
    nodes = None
    if args.nodes is not None:
        items = [item for item in args.nodes if item["metadata"]["name"] in passed]
        nodes = {"metadata": {}, "items": items}
    return orjson.dumps({
        "Nodes": nodes,
        "NodeNames": names,
        "FailedNodes": result.failed,
        "FailedAndUnresolvableNodes": result.unresolvable,
        "Error": result.error,
    })


def write_host_priorities(scores: Iterable[tuple[str, int]]) -> bytes:
    """Encode a ``HostPriorityList``: a bare array of ``{"Host", "Score"}``."""
    return orjson.dumps([{"Host": host, "Score": score} for host, score in scores])


def write_preemption_result(kept: Mapping[str, NodeVictims]) -> bytes:
    """Encode an ``ExtenderPreemptionResult``; always meta victims (UIDs), as the scheduler reads them."""
    return orjson.dumps({"NodeNameToMetaVictims": {
        name: {"Pods": [{"UID": v.uid} for v in victims.pods], "NumPDBViolations": victims.num_pdb_violations}
        for name, victims in kept.items()
    }})


def write_binding_result(error: str) -> bytes:
    """Encode an ``ExtenderBindingResult``: ``Error`` empty when the pod was bound."""
    return orjson.dumps({"Error": error})


def write_error(message: str) -> bytes:
    """The body of a 4xx answer: the message in the extender types' ``Error`` field."""
    return orjson.dumps({"Error": message})


__all__ = [
    "MAX_NODES",
    "MAX_VICTIMS",
    "BindingArgs",
    "ExtenderArgs",
    "FilterResult",
    "JsonObject",
    "NodeVictims",
    "PreemptionArgs",
    "Victim",
    "node_name",
    "read_binding_args",
    "read_extender_args",
    "read_preemption_args",
    "write_binding_result",
    "write_error",
    "write_filter_result",
    "write_host_priorities",
    "write_preemption_result",
]
