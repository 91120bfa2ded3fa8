"""Values: resource vectors and quantities, the fleet inventory, demand classes and plans. No I/O beyond reading a
document handed to ``validation``."""

from broker.model.demand import Demand, DemandClass, Sink
from broker.model.inventory import NAME_PATTERN, Cluster, ClusterKind, Inventory, Link, Node, Site, SiteKind
from broker.model.plan import (
    Binding,
    Explanation,
    LinkUse,
    NodePlan,
    Placement,
    Plan,
    SolveReport,
    SolveStatus,
    TeamBinding,
    TeamPlan,
)
from broker.model.quantity import UNLIMITED, Dimension, format_quantity, parse_quantity
from broker.model.resources import UNBOUNDED, ZERO, Resources, total
from broker.model.validation import describe, load, parse, read_document, unique_names

__all__ = [
    "NAME_PATTERN",
    "UNBOUNDED",
    "UNLIMITED",
    "ZERO",
    "Binding",
    "Cluster",
    "ClusterKind",
    "Demand",
    "DemandClass",
    "Dimension",
    "Explanation",
    "Inventory",
    "Link",
    "LinkUse",
    "Node",
    "NodePlan",
    "Placement",
    "Plan",
    "Resources",
    "Sink",
    "Site",
    "SiteKind",
    "SolveReport",
    "SolveStatus",
    "TeamBinding",
    "TeamPlan",
    "describe",
    "format_quantity",
    "load",
    "parse",
    "parse_quantity",
    "read_document",
    "total",
    "unique_names",
]
