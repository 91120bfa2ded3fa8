"""``broker schema KIND``: the JSON Schema of each input file, for editors and CI validation of admins' files."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import typer

from broker.cli.common import print_json
from broker.model import Demand, Inventory, Plan
from broker.quota import policy_schema
from broker.scheduler import QuotaDocument
from plugins.sim.scenario import Scenario


class SchemaKind(str, Enum):
    """Input documents with a published schema."""

    INVENTORY = "inventory"
    DEMAND = "demand"
    PLAN = "plan"
    SCENARIO = "scenario"
    QUOTA_POLICY = "quota-policy"
    RUNTIME_QUOTA = "runtime-quota"


_SCHEMAS: dict[SchemaKind, Callable[[], dict[str, Any]]] = {
    SchemaKind.INVENTORY: Inventory.model_json_schema,
    SchemaKind.DEMAND: Demand.model_json_schema,
    SchemaKind.PLAN: Plan.model_json_schema,
    SchemaKind.SCENARIO: Scenario.model_json_schema,
    SchemaKind.QUOTA_POLICY: policy_schema,
    SchemaKind.RUNTIME_QUOTA: QuotaDocument.model_json_schema,
}

_KINDS = ", ".join(kind.value for kind in SchemaKind)


def schema(kind: SchemaKind = typer.Argument(..., help=f"Which document: {_KINDS}.")) -> None:
    """Print the JSON Schema of an input document (inventory, demand, plan, scenario, quota policy, runtime quota)."""
    print_json(_SCHEMAS[kind]())
