"""Offline demand, grouped into classes of identical containers.

A ``DemandClass`` is what a team wants placed: ``count`` containers of one ``shape``, with the properties placement
must respect. Grouping identical containers into classes keeps the placement model small (200 classes, not 100,000
containers) and is exact, because identical containers are interchangeable.
"""

from __future__ import annotations

from enum import Enum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model.inventory import NAME_PATTERN
from broker.model.resources import Resources
from broker.model.validation import unique_names


class Sink(str, Enum):
    """Which scheduler runs a class's containers: YARN NodeManagers or Kubernetes batch pods."""

    YARN = "yarn"
    KUBERNETES = "kubernetes"


class DemandClass(BaseModel):
    """``count`` identical offline containers wanted by ``team``.

    - ``needs_disk``: the containers write shuffle data locally, so they need a ``disk`` node, unless
      ``remote_shuffle`` says a remote shuffle service takes it;
    - ``is_am``: ApplicationMasters / Spark drivers, placed only on ``stable`` capacity;
    - ``data_site`` / ``read_mbps``: where the input data lives and how fast one container reads it; computing at
      another site costs that much bandwidth on the link between the two;
    - ``am_class``: for executors, the class (same team, ``is_am``) holding the ApplicationMasters / drivers of
      their jobs. Executors are useless without their AM, so a plan places at most
      ``placed(am_class) * count // count(am_class)`` of them: the share of the executors whose AMs were
      placed. An ``am_class`` with ``count: 0`` (the AMs already run) does not hold executors back.
    - ``running``: how many of the ``count`` already run. The planner places all ``count`` (a running container
      may be placed elsewhere than it runs: the plan says where capacity goes, not where containers are); the
      extender counts the running ones, plus the pods it admitted since the plan, against the team's quota.
    - ``cluster``: the inventory cluster whose nodes may run the containers, for work only one cluster's
      scheduler can start (a YARN cluster's pending asks run only on that RM's NodeManagers); ``None``: any
      node. An executor class names the same cluster as its ``am_class``, since a job runs in one cluster.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    team: str = Field(pattern=NAME_PATTERN)
    shape: Resources
    count: int = Field(ge=0, le=10_000_000)
    needs_disk: bool = False
    remote_shuffle: bool = False
    is_am: bool = False
    data_site: str | None = None
    read_mbps: int = Field(0, ge=0, le=100_000)
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    sink: Sink = Sink.YARN
    am_class: str | None = Field(None, pattern=NAME_PATTERN)
    running: int = Field(0, ge=0, le=10_000_000)
    cluster: str | None = Field(None, pattern=NAME_PATTERN)

    @model_validator(mode="after")
    def _shape_is_positive(self) -> Self:
        if self.shape.cpu_milli == 0 and self.shape.memory_mib == 0:
            raise InputError("shape", "a container must ask for some cpu or memory")
        if self.running > self.count:
            raise InputError("running", f"{self.running} running is more than the {self.count} wanted in all")
        return self

    @property
    def requires_disk(self) -> bool:
        """True when the class may only run on ``disk`` nodes."""
        return self.needs_disk and not self.remote_shuffle


class Demand(BaseModel):
    """A demand document: every class, names unique; an ``am_class`` names an AM class of the same team and
    cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: tuple[DemandClass, ...] = Field(default=(), max_length=100_000)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        unique_names("classes", (item.name for item in self.classes), "class name")
        by_name = {item.name: item for item in self.classes}
        for i, item in enumerate(self.classes):
            if item.am_class is None:
                continue
            am = by_name.get(item.am_class)
            if am is None:
                raise InputError(f"classes[{i}].am_class", f"unknown class {item.am_class!r}")
            if item.is_am or not am.is_am or am.team != item.team:
                raise InputError(f"classes[{i}].am_class",
                                 f"{item.am_class!r} must be an is_am class of team {item.team!r} and "
                                 f"{item.name!r} not an AM class itself")
            if am.cluster != item.cluster:
                raise InputError(f"classes[{i}].cluster",
                                 f"{item.name!r} runs in cluster {item.cluster!r} but its AM class "
                                 f"{am.name!r} in {am.cluster!r}: a job's AMs and executors share a cluster")
        return self


__all__ = ["Demand", "DemandClass", "Sink"]
