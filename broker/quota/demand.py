"""Per-leaf demand documents: what each quota group is running plus what it has pending.

Two forms are read, so that admins can reuse what they already have::

    demand:
      team-a: {cpu: 120, memory: 480Gi}
      team-b: {cpu: 10}

or a broker demand document (``broker schema demand``), summed per ``team`` (shape x count)::

    classes:
      - {name: etl, team: team-a, shape: {cpu: 2, memory: 8Gi}, count: 60}

Team names are leaf group names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.errors import InputError
from broker.model import Demand, Resources, parse

MAX_GROUPS = 100_000


def read_demand(data: Any, where: str = "") -> dict[str, Resources]:
    """Read either demand form into ``{leaf group: Resources}``; errors name the field."""
    prefix = f"{where}." if where else ""
    if isinstance(data, Mapping) and "classes" in data:
        document = parse(Demand, data, where)
        out: dict[str, Resources] = {}
        for item in document.classes:
            out[item.team] = out.get(item.team, Resources()) + item.shape * item.count
        return out
    if not isinstance(data, Mapping) or set(data) != {"demand"} or not isinstance(data["demand"], Mapping):
        raise InputError(where or "demand", "expected {demand: {group: {cpu: ..., memory: ...}}} or a broker "
                                            "demand document with classes")
    table: Mapping[Any, Any] = data["demand"]
    if len(table) > MAX_GROUPS:
        raise InputError(f"{prefix}demand", f"{len(table)} groups; the limit is {MAX_GROUPS}")
    return {str(name): parse(Resources, amount, f"{prefix}demand.{name}") for name, amount in table.items()}


__all__ = ["read_demand"]
