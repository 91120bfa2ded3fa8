"""``broker schema KIND``: the JSON Schema of each input file, for editors and CI validation of admins' files."""

from __future__ import annotations

from enum import Enum

import typer
from pydantic import BaseModel

from broker.cli.common import print_json
from broker.model import Demand, Inventory, Plan


class SchemaKind(str, Enum):
    """Input documents with a published schema."""

    INVENTORY = "inventory"
    DEMAND = "demand"
    PLAN = "plan"
    SCENARIO = "scenario"


def _models() -> dict[SchemaKind, type[BaseModel]]:
    from plugins.sim.scenario import Scenario

    return {
        SchemaKind.INVENTORY: Inventory,
        SchemaKind.DEMAND: Demand,
        SchemaKind.PLAN: Plan,
        SchemaKind.SCENARIO: Scenario,
    }


_KINDS = ", ".join(kind.value for kind in SchemaKind)


def schema(kind: SchemaKind = typer.Argument(..., help=f"Which document: {_KINDS}.")) -> None:
    """Print the JSON Schema of an input document (inventory, demand, plan, scenario)."""
    print_json(_models()[kind].model_json_schema())
