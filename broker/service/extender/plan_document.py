"""Reading a plan document (decoded JSON or YAML) straight into the extender's tables, fast.

A new plan must be answered from within a second of being written. Validating a 5,000-node plan (4 MB) as a
``Plan`` takes 0.4-1.5 s on a busy 2-core machine, most of it in the per-``Resources`` validator, run some
15,000 times for capacities the extender mostly never reads. So the nodes, which are nearly all of the
document, are checked and turned into ``NodeEntry`` objects in one pass here, while everything else (teams,
``unmet``, ``solve``, ``links``: small) is still validated by the ``Plan`` model itself.

The fast pass accepts only the form the planner writes (``Plan.model_dump_json``): exact integer resource
fields, strings, booleans and lists where the model has them, no unknown keys. It is stricter than the
model, never looser. Anything else (a quantity such as ``cpu: "4"``, a missing field, a wrong type) sends the
whole document through ``Plan`` validation, which either accepts it (the friendly forms) or raises the
``InputError`` naming the bad field. So the tables built here are always the tables of a valid ``Plan``, and
a broken document never gets as far as replacing the current tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.model.demand import Sink
from broker.model.plan import NodePlan, Placement, Plan
from broker.model.quantity import UNLIMITED
from broker.model.resources import ZERO, Resources
from broker.model.validation import parse
from broker.service.extender.tables import (
    KubernetesPlacement,
    NodeEntry,
    PlanTables,
    assemble,
    build_tables,
    node_entry,
)

_NODE_KEYS = frozenset(NodePlan.model_fields)
_PLACEMENT_KEYS = frozenset(Placement.model_fields)
_RESOURCE_KEYS = frozenset(Resources.FIELDS)
_SINKS = frozenset(sink.value for sink in Sink)
_KUBERNETES = Sink.KUBERNETES.value


@dataclass(frozen=True, slots=True)
class PlanDocument:
    """A plan as decoded from its file or record, not validated yet (``tables_from_document`` does that)."""

    data: Any


class _NotCanonical(Exception):
    """The document strays from the planner's own form: the ``Plan`` model decides what it means."""


def _amounts(value: Any) -> tuple[int, ...]:
    """The amounts of a resources object in the exact integer form (a key of ``_NodeReader.capacities``)."""
    if type(value) is not dict or not value.keys() <= _RESOURCE_KEYS:
        raise _NotCanonical
    for amount in value.values():
        if type(amount) is not int or not 0 <= amount <= UNLIMITED:
            raise _NotCanonical
    return tuple(value.get(name, 0) for name in Resources.FIELDS)


def _placement(value: Any) -> KubernetesPlacement | None:
    """The placement if it is on the Kubernetes sink, ``None`` for a (valid) YARN one."""
    if type(value) is not dict or not value.keys() <= _PLACEMENT_KEYS:
        raise _NotCanonical
    demand_class, team, sink = value.get("demand_class"), value.get("team"), value.get("sink")
    is_am, count = value.get("is_am", False), value.get("count")
    if (type(demand_class) is not str or type(team) is not str or type(sink) is not str
            or sink not in _SINKS or type(is_am) is not bool or type(count) is not int or count < 0):
        raise _NotCanonical
    return (team, demand_class, is_am, count) if sink == _KUBERNETES else None


class _NodeReader:
    """Checks node objects and builds their entries; equal capacities share one ``Resources`` (fleets are
    made of a few hardware shapes, and building a pydantic object is the costliest step here)."""

    def __init__(self) -> None:
        self.capacities: dict[tuple[int, ...], Resources] = {}

    def capacity(self, value: Any) -> Resources:
        amounts = _amounts(value)
        found = self.capacities.get(amounts)
        if found is None:
            found = self.capacities[amounts] = Resources.exact(*amounts)
        return found

    def entry(self, value: Any) -> NodeEntry:
        if type(value) is not dict or not value.keys() <= _NODE_KEYS:
            raise _NotCanonical
        name, labels, placements = value.get("node"), value.get("labels", []), value.get("placements", [])
        site, cluster = value.get("site"), value.get("cluster")
        if (type(name) is not str or type(site) is not str or type(cluster) is not str
                or type(labels) is not list or type(placements) is not list):
            raise _NotCanonical
        for label in labels:
            if type(label) is not str:
                raise _NotCanonical
        for unread in ("lendable", "yarn"):
            if unread in value:
                _amounts(value[unread])
        capacity = self.capacity(value["kubernetes"]) if "kubernetes" in value else ZERO
        kubernetes = [p for p in map(_placement, placements) if p is not None]
        return node_entry(name, labels, capacity, kubernetes)


def tables_from_document(document: PlanDocument, cluster: str | None = None) -> PlanTables:
    """The tables of the plan in ``document``, serving ``cluster``; ``InputError`` naming the field if the
    document is not a valid plan."""
    data = document.data
    try:
        if type(data) is not dict or type(data.get("nodes", [])) is not list:
            raise _NotCanonical
        plan = parse(Plan, {**data, "nodes": ()})
        reader = _NodeReader()
        nodes: dict[str, NodeEntry] = {}
        for item in data.get("nodes", []):
            entry = reader.entry(item)
            nodes[entry.name] = entry
    except _NotCanonical:
        return build_tables(parse(Plan, data), cluster)
    return assemble(plan, nodes, cluster)


__all__ = ["PlanDocument", "tables_from_document"]
