"""Scenario files for ``broker simulate``: the fleet, where online load and offline demand come from, the policies.

A scenario is a YAML document validated as a whole (``broker schema scenario`` prints its JSON Schema). The embedded
default (``scenarios/default.yaml``) needs no external file; ``scenarios/alibaba.yaml`` replays the public Alibaba
traces from ``../shared/traces``. Relative trace paths are resolved against the scenario file's folder, then the
current directory.
"""

from __future__ import annotations

from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from broker.errors import InputError
from broker.model import NAME_PATTERN, Resources, SiteKind, load, parse
from broker.quota import QuotaPolicy

PolicyName = Literal["online-only", "static", "usage-threshold", "broker"]
POLICIES: tuple[PolicyName, ...] = ("online-only", "static", "usage-threshold", "broker")


class NodeGroup(BaseModel):
    """``count`` identical nodes at a site. ``stable_fraction`` of them are labelled ``stable``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1, le=100_000)
    capacity: Resources
    reserved: Resources = Resources()
    disk: bool = True
    stable_fraction: float = Field(0.2, ge=0, le=1)
    nic_mbps: int = Field(25_000, ge=0)
    load_factor: float = Field(1.0, gt=0, le=5, description="Scales the online load of these nodes.")


class SiteSpec(BaseModel):
    """A site and its node groups."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: SiteKind = SiteKind.IDC
    cost_per_core_hour: float = Field(0.0, ge=0)
    node_groups: tuple[NodeGroup, ...] = Field(min_length=1, max_length=100)


class LinkSpec(BaseModel):
    """A link between two sites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a: str
    b: str
    capacity_mbps: int = Field(gt=0)
    online_used_mbps: int = Field(0, ge=0, description="What online traffic uses of the link (not lent).")


class OnlineFormat(str, Enum):
    """Where online usage comes from."""

    SYNTHETIC = "synthetic"
    ALIBABA2018 = "alibaba2018"
    CSV = "csv"


class OnlineSpec(BaseModel):
    """Online (latency-sensitive) usage per node.

    - ``synthetic``: the built-in generator (``mean_cpu``, ``peak_hour``, ``daily_amplitude``, spikes, memory);
    - ``alibaba2018``: raw ``machine_usage`` rows; the trace's machines are tiled over the fleet, each copy shifted by
      a different offset so that peaks do not line up artificially;
    - ``csv``: ``timestamp_s,node,cpu_percent,mem_percent`` with a header; trace nodes are tiled the same way.

    ``memory_scale`` maps a trace's memory percentage onto the online working set (see the alibaba scenario).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: OnlineFormat = OnlineFormat.SYNTHETIC
    path: str | None = None
    mean_cpu: float = Field(0.17, gt=0, lt=1)
    peak_hour: float = Field(21.0, ge=0, lt=24)
    daily_amplitude: float = Field(0.6, ge=0, le=1)
    noise: float = Field(0.08, ge=0, le=1, description="Relative std of the slow noise around the daily profile.")
    spikes_per_day: float = Field(3.0, ge=0, le=1000)
    spike_mean: float = Field(0.04, ge=0, le=1, description="Mean spike height, as a fraction of capacity.")
    mean_memory: float = Field(0.40, gt=0, lt=1)
    memory_scale: float = Field(1.0, gt=0, le=1)
    cpu_scale: float = Field(1.0, gt=0, le=2)
    metric_outages_per_node_day: float = Field(0.02, ge=0, le=10)
    outage_minutes: float = Field(30.0, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _trace_needs_path(self) -> Self:
        if self.source is not OnlineFormat.SYNTHETIC and not self.path:
            raise InputError("path", f"online source {self.source.value!r} needs a path")
        return self


class OfflineFormat(str, Enum):
    """Where offline demand comes from."""

    SYNTHETIC = "synthetic"
    ALIBABA2017 = "alibaba2017"
    CSV = "csv"


class OfflineSpec(BaseModel):
    """Offline demand: jobs, each one ApplicationMaster plus ``instances`` workers of one shape.

    - ``synthetic``: arrivals heavier at night (``night_factor``), sizes and durations from the Alibaba 2017 batch
      statistics, volume set so that demand averages ``load`` times the fleet's capacity;
    - ``alibaba2017``: ``batch_task`` rows (one task = one job), instance counts times ``instance_scale``, replayed
      every day;
    - ``csv``: ``arrival_s,team,instances,cpu,memory,duration_s,needs_disk`` with a header (quantities as text).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: OfflineFormat = OfflineFormat.SYNTHETIC
    path: str | None = None
    load: float = Field(0.75, gt=0, le=10, description="Mean offline demand as a fraction of fleet CPU.")
    night_factor: float = Field(1.5, ge=1, le=10)
    instance_scale: float = Field(1.0, gt=0, le=100)
    needs_disk_fraction: float = Field(0.3, ge=0, le=1)
    memory_per_core: str = "2Gi"
    max_duration_s: int = Field(6 * 3600, ge=10)

    @model_validator(mode="after")
    def _trace_needs_path(self) -> Self:
        if self.source is not OfflineFormat.SYNTHETIC and not self.path:
            raise InputError("path", f"offline source {self.source.value!r} needs a path")
        return self


class TeamSpec(BaseModel):
    """A team that submits offline work; ``share`` is its part of the offline demand.

    ``data_site`` is where the team's input data lives and ``read_mbps`` how fast one of its workers reads it: a
    worker computing at another site uses that much of the link between the two sites (the ``broker`` policy's
    planner keeps every link within its capacity). Without a data site, work reads nothing over links.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    share: float = Field(1.0, gt=0)
    data_site: str | None = None
    read_mbps: int = Field(0, ge=0, le=100_000)


class SafeLimit(BaseModel):
    """Above these fractions of a node's capacity, online work is hurt: the node is *interfered*."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: float = Field(0.85, gt=0, le=1)
    memory: float = Field(0.90, gt=0, le=1)


class Scenario(BaseModel):
    """A simulation scenario (see the module docstring and ``docs/simulate.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    seed: int = 7
    step_s: int = Field(10, ge=1, le=3600)
    days: float = Field(2.0, gt=0, le=30)
    warmup_days: float = Field(1.0, ge=0, le=7, description="History the estimators see before measuring starts.")
    start_hour: float = Field(0.0, ge=0, lt=24)
    sites: tuple[SiteSpec, ...] = Field(min_length=1, max_length=100)
    links: tuple[LinkSpec, ...] = ()
    online: OnlineSpec = OnlineSpec()
    offline: OfflineSpec = OfflineSpec()
    teams: tuple[TeamSpec, ...] = Field(default=(TeamSpec(name="default"),), min_length=1, max_length=1000)
    safe_limit: SafeLimit = SafeLimit()
    policies: tuple[PolicyName, ...] = POLICIES
    static_fraction: float = Field(0.3, ge=0, le=1)
    offline_cpu_usage: float = Field(1.0, gt=0, le=1, description="CPU offline containers use / what they ask for.")
    am_shape: Resources = Resources.of(cpu="1", memory="2Gi")
    node_scale: float = Field(1.0, gt=0, le=100, description="Multiplies every node group's count.")
    quota: dict[str, Any] | None = Field(
        None, description="An elastic quota policy (the `broker quota` format) whose leaves are the teams; the "
                          "`broker` policy shares its pool by it. Absent: teams share first come, first served.")
    quota_interval_s: float = Field(60.0, ge=1, le=3600, description="Seconds between runtime-quota updates.")
    reclaim_grace_s: float = Field(120.0, ge=0, le=86_400, description="Grace before quota reclaim evicts.")
    plan_interval_s: float = Field(
        120.0, ge=1, le=86_400,
        description="Seconds between two plans of the `broker` policy's placement planner (its reservations hold "
                    "until the next plan).")
    plan_time_limit_s: float = Field(1.0, gt=0, le=60, description="Time limit of one planner solve.")

    _policy: QuotaPolicy | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise InputError("sites", "site names must be unique")
        for i, link in enumerate(self.links):
            for end in (link.a, link.b):
                if end not in names:
                    raise InputError(f"links[{i}]", f"unknown site {end!r}")
        if len({t.name for t in self.teams}) != len(self.teams):
            raise InputError("teams", "team names must be unique")
        for i, team in enumerate(self.teams):
            if team.data_site is not None and team.data_site not in names:
                raise InputError(f"teams[{i}].data_site", f"unknown site {team.data_site!r}")
        if len(set(self.policies)) != len(self.policies) or not self.policies:
            raise InputError("policies", "list each policy once, at least one")
        if self.quota is not None:
            policy = QuotaPolicy.from_document(self.quota)
            leaves = {policy.tree.names[i] for i in policy.tree.leaves}
            for i, team in enumerate(self.teams):
                if team.name not in leaves:
                    raise InputError(f"teams[{i}].name", f"team {team.name!r} is not a leaf group of the quota policy")
            self._policy = policy
        return self

    def quota_policy(self) -> QuotaPolicy:
        """The validated quota policy (only when ``quota`` is set)."""
        if self._policy is None:
            raise ValueError("scenario has no quota policy")
        return self._policy

    @property
    def steps(self) -> int:
        """Measured steps."""
        return int(self.days * 86_400 // self.step_s)

    @property
    def warmup_steps(self) -> int:
        """Steps of history before measuring starts."""
        return int(self.warmup_days * 86_400 // self.step_s)


BUILTIN = ("default", "alibaba")
"""Scenarios shipped with the package (``plugins/sim/scenarios/<name>.yaml``)."""


def builtin_scenario(name: str) -> Scenario:
    """A scenario shipped with the package, by name."""
    if name not in BUILTIN:
        raise InputError("scenario", f"{name!r} is neither a scenario file nor a built-in ({', '.join(BUILTIN)})")
    text = resources.files("plugins.sim").joinpath(f"scenarios/{name}.yaml").read_text(encoding="utf-8")
    return parse(Scenario, yaml.safe_load(text), where=f"scenario {name}")


def default_scenario() -> Scenario:
    """The embedded default scenario (no external files)."""
    return builtin_scenario("default")


def load_scenario(path: Path) -> tuple[Scenario, Path]:
    """Read a scenario file; returns it with the folder its relative trace paths are resolved against."""
    return load(Scenario, path), path.resolve().parent


def resolve_trace(path: str, base: Path | None) -> Path:
    """A trace path: absolute, relative to the scenario file's folder, or to the current directory."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    if base is not None and (base / candidate).exists():
        return base / candidate
    return candidate


__all__ = [
    "BUILTIN",
    "POLICIES",
    "LinkSpec",
    "NodeGroup",
    "OfflineFormat",
    "OfflineSpec",
    "OnlineFormat",
    "OnlineSpec",
    "SafeLimit",
    "Scenario",
    "SiteSpec",
    "TeamSpec",
    "builtin_scenario",
    "default_scenario",
    "load_scenario",
    "resolve_trace",
]
