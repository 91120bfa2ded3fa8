"""The planner's own input documents: each team's runtime quota and each node's lendable capacity.

Both are what other parts of the broker compute every interval (the quota engine and the spare-capacity
estimator); as files they let ``broker plan`` run on its own. The formats::

    # quota file                                   # lendable file (optional)
    teams:                                         nodes:
      team-a:                                        node-0001: {cpu: "12", memory: "48Gi"}
        min:     {cpu: "40", memory: "160Gi"}        node-0002: {cpu: "3500m", memory: "20Gi", network: "4G"}
        runtime: {cpu: "100", memory: "400Gi"}
        weight: 2

- ``min`` is the team's guaranteed share: the planner's first priority is to place demand up to it.
- ``runtime`` is the cap for this interval (the quota engine's answer after lending and borrowing). A
  dimension that ``runtime`` does not name is not capped; ``runtime`` left out entirely means no cap at all.
- ``weight`` divides the capacity above all guarantees between teams (weighted fair share).
- A team with demand but no entry gets no guarantee and a zero cap, so its demand is explained as quota-bound.
- A node missing from a lendable file lends nothing (lend less, never more, when the estimator is silent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broker.model import UNBOUNDED, ZERO, Resources
from broker.model.inventory import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)

_DIMENSION_KEYS = (("cpu", "cpu_milli"), ("memory", "memory_mib"), ("disk", "disk_gib"),
                   ("network", "network_mbps"), ("gpu", "gpu"))


class TeamQuota(BaseModel):
    """One team's guarantee, cap and fair-share weight for the interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: Resources = ZERO
    runtime: Resources = UNBOUNDED
    weight: int = Field(1, ge=1, le=1000)

    @field_validator("runtime", mode="before")
    @classmethod
    def _unnamed_dimensions_are_uncapped(cls, value: Any) -> Any:
        """A quota that names only cpu and memory caps only those: the others read as ``unlimited``."""
        if not isinstance(value, Mapping):
            return value
        filled = dict(value)
        for friendly, exact in _DIMENSION_KEYS:
            if friendly not in value and exact not in value:
                filled[friendly] = "unlimited"
        return filled


class QuotaDocument(BaseModel):
    """Runtime quota per team, keyed by team name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    teams: dict[str, TeamQuota] = Field(default_factory=dict, max_length=100_000)

    @field_validator("teams")
    @classmethod
    def _team_names(cls, value: dict[str, TeamQuota]) -> dict[str, TeamQuota]:
        for name in value:
            if not _NAME.fullmatch(name):
                raise ValueError(f"team name {name!r} is not a valid name")
        return value


class LendableDocument(BaseModel):
    """Lendable capacity per node name, as the spare-capacity estimator would give it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: dict[str, Resources] = Field(default_factory=dict, max_length=200_000)


__all__ = ["LendableDocument", "QuotaDocument", "TeamQuota"]
