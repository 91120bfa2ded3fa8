"""One quota group of the tree, as an admin writes it.

Groups form a tree by ``parent`` (a group without one hangs directly under the pool). Leaves own workloads and
carry the mapping to the outside world: YARN queue paths per YARN cluster and Kubernetes namespaces per
cluster, so that one team's quota covers its work in both schedulers at once. Inner groups (org, department)
only divide.

Per dimension, unset means: ``min`` 0, ``max`` unlimited, ``lendingLimit`` all of min may be lent,
``borrowingLimit`` may borrow up to max. Field names are camelCase in files (as in Kubernetes objects) and
snake_case in Python.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from broker.model import TeamBinding
from broker.quota.amount import Limits, Weights

GROUP_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""Group names are DNS labels: they double as Kubernetes object names and metric labels."""

MAX_BINDINGS = 256
"""Largest number of clusters, or of queues / namespaces per cluster, one leaf may list."""


class QuotaGroup(BaseModel):
    """A node of the quota tree: its limits, its share of the surplus and (for leaves) where its work runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: str = Field(pattern=GROUP_NAME_PATTERN)
    parent: str | None = Field(None, description="Parent group; none for a group directly under the pool.")
    min: Limits = Field(default_factory=Limits, description="Guaranteed (quantity or 'NN%' of the pool).")
    max: Limits = Field(default_factory=Limits, description="Cap; unset dimensions are unlimited.")
    lending_limit: Limits = Field(
        default_factory=Limits, description="How much of its unused min others may borrow; unset = all of it."
    )
    borrowing_limit: Limits = Field(
        default_factory=Limits, description="How much above min it may take; unset = up to max."
    )
    weight: Weights = Field(default_factory=Weights, description="Share of the surplus (int or per dim).")
    preemptible: bool = Field(True, description="Default for this group's containers when they do not say.")
    yarn_queues: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, max_length=MAX_BINDINGS,
        description="YARN cluster -> queue paths (leaves only).",
    )
    namespaces: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, max_length=MAX_BINDINGS,
        description="Kubernetes cluster -> namespaces (leaves only).",
    )
    description: str = Field("", max_length=1024)

    @property
    def has_bindings(self) -> bool:
        """True when the group maps to any YARN queue or namespace."""
        return any(self.yarn_queues.values()) or any(self.namespaces.values())

    def binding(self) -> TeamBinding:
        """The group's bindings in the shared plan model, so that a plan can carry the team mapping."""
        return TeamBinding(yarn_queues=dict(self.yarn_queues), namespaces=dict(self.namespaces))


__all__ = ["GROUP_NAME_PATTERN", "MAX_BINDINGS", "QuotaGroup"]
