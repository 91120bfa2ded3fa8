"""The placement problem: everything one planning interval decides from, in one immutable value.

A ``PlacementProblem`` is the snapshot the planner works on (Kueue's ``Cache.Snapshot()``): the fleet, the
demand still to place, each team's runtime quota and, per node, the capacity that may be lent. The simulator
and the control loop pass lendable capacity *net* of what already runs, so the same function plans a whole
fleet or only a delta of new demand on what is left.

Two readings are fixed here, so that the planner, the checker and the docs agree:

- **lendable capacity** of a node is ``lendable[name]`` when a mapping is given (a node it does not name lends
  nothing), else ``capacity - reserved``;
- **NIC budget** of a node, the bandwidth its offline containers may use (their ``shape.network_mbps`` plus
  ``read_mbps`` for reading input), is the lendable ``network_mbps`` when that is stated (non-zero), else
  ``nic_mbps - reserved.network_mbps``.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from broker.errors import InputError
from broker.model import ZERO, Demand, DemandClass, Inventory, Node, Resources
from broker.scheduler.inputs import QuotaDocument, TeamQuota

NO_QUOTA = TeamQuota(runtime=ZERO)
"""What a team without an entry in the quota document gets: no guarantee and a zero cap."""


class PlacementProblem(BaseModel):
    """One interval's inputs. Validated as a whole: lendable capacity names known nodes and fits in them,
    every class's data site and cluster are a known site and cluster. As with labels, a known cluster whose
    nodes cannot take a class (it has none, or they are full) is not an error: the class is explained unmet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inventory: Inventory
    demand: Demand
    quota: QuotaDocument
    lendable: dict[str, Resources] | None = None

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        nodes = {n.name: n for n in self.inventory.nodes}
        for name, amount in (self.lendable or {}).items():
            if name not in nodes:
                raise InputError(f"lendable.{name}", "unknown node")
            if not _without_network(amount).fits_in(_without_network(nodes[name].capacity)):
                raise InputError(f"lendable.{name}",
                                 f"lends more than the node's capacity ({nodes[name].capacity})")
        sites = {s.name for s in self.inventory.sites}
        clusters = {c.name for c in self.inventory.clusters}
        for i, item in enumerate(self.demand.classes):
            if item.data_site is not None and item.data_site not in sites:
                raise InputError(f"demand.classes[{i}].data_site", f"unknown site {item.data_site!r}")
            if item.cluster is not None and item.cluster not in clusters:
                raise InputError(f"demand.classes[{i}].cluster", f"unknown cluster {item.cluster!r}")
        return self

    def lendable_of(self, node: Node) -> Resources:
        """What ``node`` may lend this interval (see the module docstring)."""
        if self.lendable is None:
            return node.capacity - node.reserved
        return self.lendable.get(node.name, ZERO)

    def nic_budget_of(self, node: Node) -> int:
        """Mbit/s of ``node``'s NIC that offline containers may use (see the module docstring)."""
        stated = self.lendable_of(node).network_mbps
        return stated if stated > 0 else max(node.nic_mbps - node.reserved.network_mbps, 0)

    def team_quota(self, team: str) -> TeamQuota:
        """``team``'s quota entry, or ``NO_QUOTA`` when the document has none."""
        return self.quota.teams.get(team, NO_QUOTA)

    def teams(self) -> tuple[str, ...]:
        """Every team named by the demand or the quota, sorted (the planner's team order)."""
        return tuple(sorted({c.team for c in self.demand.classes} | set(self.quota.teams)))


def network_need(item: DemandClass) -> int:
    """Mbit/s of NIC one container of ``item`` uses: what its shape asks for plus what it reads."""
    return item.shape.network_mbps + item.read_mbps


def _without_network(amount: Resources) -> Resources:
    """Network is checked against the NIC, not against ``capacity.network_mbps`` (often left unstated)."""
    return Resources.exact(amount.cpu_milli, amount.memory_mib, amount.disk_gib, 0, amount.gpu)


__all__ = ["NO_QUOTA", "PlacementProblem", "network_need"]
