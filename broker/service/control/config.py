"""``broker serve --config FILE``: the service's configuration, from a YAML file and the environment, validated whole.

Every field has a default that runs on a laptop: the simulated fleet of the embedded scenario, the in-process
store, no peers. Pointing the service at real clusters means naming, in the file or in the environment:

- ``store``: a Redis URL (several replicas share it; ``leader.kind: redis`` elects one of them);
- ``fleet.inventory``: the sites, links and nodes (``broker schema inventory``), with ``usage: agents`` (node
  agents stream real ``/proc`` and cgroup figures, ``agents.listen``);
- ``demand.kind: file`` with ``demand.file`` (``broker schema demand``), re-read when it changes, or
  ``demand.kind: yarn``: pending and running work read from the ResourceManagers every cycle, or
  ``demand.kind: kubernetes``: the offline pods of ``kubernetes_clusters``, or ``yarn+kubernetes``: both;
- ``sinks.yarn`` (the YARN bridge's cluster file) and ``sinks.kubernetes`` (the Kubernetes clusters file);
  ``sinks.quota_status`` (a cluster of that file and an ``ElasticQuotaPolicy`` name) for the quota status;
- ``policy_source.kind: kubernetes`` (a cluster of that file and an ``ElasticQuotaPolicy`` name): the policy is
  that object's spec, edited with kubectl, instead of what ``broker quota apply`` and the admin API write.

Environment variables override the file: ``BROKER_<FIELD>`` for a top-level field and ``BROKER_<SECTION>__<FIELD>``
for a nested one (``BROKER_INTERVAL_S=5``, ``BROKER_HTTP__PORT=9000``, ``BROKER_STORE=redis://redis:6379/0``).
Values are read as YAML scalars, so numbers and booleans need no quoting. A bad value is an ``InputError`` naming
the field and where it came from.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model.validation import parse, read_document
from broker.service.extender.conventions import DEFAULT_DOMAIN

ENV_PREFIX = "BROKER_"
"""Every variable with this prefix is configuration (``BROKER_STORE`` is the CLI's store location and the
service's alike); an unknown one is refused, so that a misspelt override does not silently do nothing."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LeaderKind(StrEnum):
    """How replicas agree on the one that runs the loop."""

    NONE = "none"
    """A single replica: it always leads (the embedded default)."""
    REDIS = "redis"
    """A lease in the shared Redis store, with a fencing token on every plan the leader publishes."""
    KUBERNETES = "kubernetes"
    """A ``coordination.k8s.io/v1`` Lease in the cluster named by ``leader.cluster``."""


class LeaderConfig(_Section):
    kind: LeaderKind = LeaderKind.NONE
    lease: str = Field("broker-leader", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=63)
    ttl_s: float = Field(10.0, ge=1.0, le=300.0, description="A leader silent this long is replaced.")
    renew_s: float = Field(2.0, gt=0.0, le=60.0, description="How often the leader renews (and followers try).")
    cluster: str | None = Field(None, description="kubernetes: the cluster (in kubernetes_clusters) holding the Lease.")
    namespace: str = "broker-system"

    @model_validator(mode="after")
    def _renew_inside_ttl(self) -> Self:
        if self.renew_s * 2 > self.ttl_s:
            raise InputError("renew_s", f"must be at most half of leader.ttl_s ({self.ttl_s}) so that a "
                             "leader renews before its lease runs out")
        return self


class UsageKind(StrEnum):
    """Where online usage comes from."""

    SIMULATED = "simulated"
    """The scenario's (with its fleet)."""
    AGENTS = "agents"
    """The node agents' streams (``broker agent``): real ``/proc`` and cgroup figures, every second."""


class FleetConfig(_Section):
    scenario: str = Field("default", description="simulated: a built-in scenario name or a scenario file.")
    speed: float = Field(1.0, ge=0.01, le=10_000.0,
                         description="simulated: simulated seconds per wall-clock second.")
    replay_from_h: float = Field(6.0, ge=0.0, le=720.0,
                                 description="simulated: hours into the scenario the replay starts (work is running).")
    inventory: Path | None = Field(None, description="The fleet (sites, links, nodes); none: the scenario's.")
    usage: UsageKind = UsageKind.SIMULATED

    @model_validator(mode="after")
    def _usage_matches_fleet(self) -> Self:
        if self.usage is UsageKind.AGENTS and self.inventory is None:
            raise InputError("inventory", "fleet.usage agents needs the real fleet's inventory")
        if self.usage is UsageKind.SIMULATED and self.inventory is not None:
            raise InputError("usage", "a fleet.inventory is a real fleet: its usage comes from agents")
        return self


class DemandKind(StrEnum):
    """Where offline demand comes from."""

    SIMULATED = "simulated"
    """The scenario's jobs (with the simulated fleet)."""
    FILE = "file"
    """Demand classes in a file, re-read when it changes."""
    YARN = "yarn"
    """Every cycle, the pending asks and running usage of active apps, read from each ResourceManager of the YARN
    bridge's cluster file and mapped to teams through the quota policy's queue bindings."""
    KUBERNETES = "kubernetes"
    """The pending and running offline pods of every cluster of ``kubernetes_clusters`` (a watch per cluster),
    mapped to teams through the quota policy's namespace bindings."""
    YARN_KUBERNETES = "yarn+kubernetes"
    """Both of the above, read at once: work on YARN and Spark-on-Kubernetes pods alike."""

    @property
    def reads_yarn(self) -> bool:
        """True when demand is read from the YARN ResourceManagers."""
        return self in (DemandKind.YARN, DemandKind.YARN_KUBERNETES)

    @property
    def reads_kubernetes(self) -> bool:
        """True when demand is read from the Kubernetes pods."""
        return self in (DemandKind.KUBERNETES, DemandKind.YARN_KUBERNETES)


class DemandConfig(_Section):
    kind: DemandKind = DemandKind.SIMULATED
    file: Path | None = Field(None, description="file: the demand file, re-read when it changes.")
    yarn: Path | None = Field(
        None, description="yarn: the YARN bridge's cluster file to read from; none: sinks.yarn's (a deployment that "
        "pushes to its RMs reads from the same ones; a separate file reads without pushing, or from fewer RMs).")
    timeout_s: float = Field(5.0, gt=0.0, le=300.0,
                             description="yarn: a ResourceManager's read still running after this is abandoned; "
                             "kubernetes: how long a cycle waits for a cluster's first list of pods, and each "
                             "request's timeout.")
    max_age_s: float | None = Field(
        None, gt=0.0, le=86_400.0, description="yarn, kubernetes: how long a cluster's last good demand stands in "
        "for failed reads (default: three loop intervals); after that the cluster contributes nothing until it "
        "answers again.")

    @model_validator(mode="after")
    def _file_needs_path(self) -> Self:
        if self.kind is DemandKind.FILE and self.file is None:
            raise InputError("file", "demand.kind file needs demand.file")
        if not self.kind.reads_yarn and self.yarn is not None:
            raise InputError("yarn", f"is read only with demand.kind yarn or yarn+kubernetes (demand.kind is "
                             f"{self.kind.value})")
        return self


class PlannerConfig(_Section):
    time_limit_s: float = Field(2.0, gt=0.0, le=600.0)
    seed: int = Field(0, ge=0)


class QuotaStatusConfig(_Section):
    """Where the leader writes each cycle's runtime quota: the status of one ``ElasticQuotaPolicy`` object."""

    cluster: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                         description="The cluster (in kubernetes_clusters) holding the policy object.")
    name: str = Field("default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                      max_length=253, description="The ElasticQuotaPolicy object (cluster-scoped) to write to.")


class PolicySourceKind(StrEnum):
    """Where the quota policy in force comes from."""

    STORE = "store"
    """The store's: written by ``broker quota apply|rollback``, the admin API and, when the store has none,
    the ``policy`` file."""
    KUBERNETES = "kubernetes"
    """An ``ElasticQuotaPolicy`` object, watched: the leader applies each valid spec to the store as a new
    version, and the admin API and the CLI refuse to write the policy."""


class PolicySourceConfig(_Section):
    """The policy's source; ``kubernetes``: the object ``name`` in ``cluster`` (``broker.service.control
    .policy_source``)."""

    kind: PolicySourceKind = PolicySourceKind.STORE
    cluster: str | None = Field(None, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                                description="kubernetes: the cluster (in kubernetes_clusters) holding the object.")
    name: str = Field("default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                      max_length=253, description="kubernetes: the ElasticQuotaPolicy object (cluster-scoped).")
    resync_s: float = Field(300.0, ge=1.0, le=86_400.0,
                            description="kubernetes: list the objects again this often, even with a watch open.")
    timeout_s: float = Field(5.0, gt=0.0, le=300.0,
                             description="kubernetes: a request to the API server still running after this fails.")

    @model_validator(mode="after")
    def _cluster_with_kubernetes(self) -> Self:
        if self.kind is PolicySourceKind.KUBERNETES and self.cluster is None:
            raise InputError("cluster", "policy_source.kind kubernetes needs the cluster holding the "
                             "ElasticQuotaPolicy")
        if self.kind is PolicySourceKind.STORE and self.cluster is not None:
            raise InputError("cluster", "is read only with policy_source.kind kubernetes")
        return self


class SinksConfig(_Section):
    yarn: Path | None = Field(None, description="The YARN bridge's cluster file (`broker yarn --help`).")
    kubernetes: bool = Field(False, description="Write offline capacity to the nodes of kubernetes_clusters.")
    quota_status: QuotaStatusConfig | None = Field(
        None, description="Write runtime quota, used, borrowed and lent per group to an ElasticQuotaPolicy status.")
    timeout_s: float = Field(5.0, gt=0.0, le=300.0, description="A push still running after this is abandoned.")


class ExtenderSection(_Section):
    enabled: bool = True
    cluster: str | None = None
    domain: str = Field(DEFAULT_DOMAIN, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    url_prefix: str = Field("/extender", pattern=r"^(/[-A-Za-z0-9_.]+)*$")
    max_plan_age_s: float | None = Field(
        None, gt=0.0, description="A plan older than this is stale (default: three loop intervals).")


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    admin_tokens: Path | None = Field(None, description="Bearer tokens of the admin API; none: API not served.")
    tls_cert: Path | None = Field(None, description="Serve HTTPS with this certificate (kube-scheduler's "
                                  "enableHTTPS).")
    tls_key: Path | None = None
    tls_client_ca: Path | None = Field(None, description="Require client certificates signed by this CA.")

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InputError("tls_key" if self.tls_key is None else "tls_cert",
                             "give both http.tls_cert and http.tls_key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InputError("tls_client_ca", "needs http.tls_cert and http.tls_key")
        return self


class AgentsConfig(_Section):
    listen: str | None = Field(None, description="host:port for node agents' gRPC streams; none: no agents.")
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    @model_validator(mode="after")
    def _authenticated(self) -> Self:
        if self.listen is not None and self.token_file is None and self.tls_client_ca is None:
            raise InputError("token_file", "agents must authenticate: give agents.token_file or "
                             "agents.tls_client_ca (mutual TLS)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InputError("tls_key" if self.tls_key is None else "tls_cert",
                             "give both agents.tls_cert and agents.tls_key")
        return self


class FastPathConfig(_Section):
    enabled: bool = True
    cpu_fraction: float = Field(0.85, gt=0.0, le=1.0, description="Safe limit: this much of a node's CPU.")
    memory_fraction: float = Field(0.90, gt=0.0, le=1.0, description="Safe limit: this much of its memory.")


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class ServiceConfig(_Section):
    """The whole configuration of one broker replica. See the module docstring."""

    replica: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1,
                         max_length=200)
    interval_s: float = Field(10.0, ge=0.1, le=3600.0, description="Seconds between two cycles of the loop.")
    store: str | None = Field(None, description="Redis URL; none: the in-process store (one replica only).")
    policy: Path | None = Field(None, description="Quota policy applied at start when the store has none.")
    policy_source: PolicySourceConfig = PolicySourceConfig()
    kubernetes_clusters: Path | None = Field(None, description="Kubernetes clusters file (`broker serve --help`).")
    leader: LeaderConfig = LeaderConfig()
    fleet: FleetConfig = FleetConfig()
    demand: DemandConfig = DemandConfig()
    planner: PlannerConfig = PlannerConfig()
    sinks: SinksConfig = SinksConfig()
    extender: ExtenderSection = ExtenderSection()
    http: HttpConfig = HttpConfig()
    agents: AgentsConfig = AgentsConfig()
    fast_path: FastPathConfig = FastPathConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.leader.kind is LeaderKind.REDIS and self.store is None:
            raise InputError("leader.kind", "redis leader election needs a Redis store (store: redis://...)")
        needs_clusters = {
            "leader.cluster": self.leader.kind is LeaderKind.KUBERNETES,
            "sinks.kubernetes": self.sinks.kubernetes,
            "sinks.quota_status": self.sinks.quota_status is not None,
            "policy_source.kind": self.policy_source.kind is PolicySourceKind.KUBERNETES,
            "demand.kind": self.demand.kind.reads_kubernetes,
        }
        for field, needed in needs_clusters.items():
            if needed and self.kubernetes_clusters is None:
                raise InputError(field, "needs kubernetes_clusters (the Kubernetes clusters file)")
        if self.policy_source.kind is PolicySourceKind.KUBERNETES and self.policy is not None:
            raise InputError("policy", "the policy comes from the ElasticQuotaPolicy (policy_source.kind "
                             "kubernetes): create the object from this file (kubectl apply) and drop policy")
        if self.leader.kind is LeaderKind.KUBERNETES and self.leader.cluster is None:
            raise InputError("leader.cluster", "kubernetes leader election needs the cluster holding the Lease")
        if (self.fleet.usage is UsageKind.AGENTS) != (self.demand.kind is not DemandKind.SIMULATED):
            raise InputError("demand.kind", "a real fleet (fleet.usage agents) takes its demand from a file, the "
                             "YARN RMs or the Kubernetes pods (file, yarn, kubernetes, yarn+kubernetes), and real "
                             "demand needs a real fleet")
        if self.demand.kind.reads_yarn and self.demand_yarn_file is None:
            raise InputError("demand.yarn", f"demand.kind {self.demand.kind.value} needs the YARN bridge's cluster "
                             "file: set demand.yarn, or sinks.yarn (which demand reads from when demand.yarn is not "
                             "set)")
        if self.fleet.usage is UsageKind.AGENTS and self.agents.listen is None:
            raise InputError("agents.listen", "fleet.usage agents needs agents.listen")
        return self

    @property
    def demand_yarn_file(self) -> Path | None:
        """The cluster file YARN demand is read from (``demand.kind: yarn``, ``yarn+kubernetes``):
        ``demand.yarn``, else ``sinks.yarn``."""
        return self.demand.yarn or self.sinks.yarn

    @property
    def demand_max_age_s(self) -> float:
        """How long a cluster's last good demand is used: configured, else three intervals (as
        ``plan_max_age_s``)."""
        return self.demand.max_age_s or max(3 * self.interval_s, 1.0)

    @property
    def plan_max_age_s(self) -> float:
        """When the extender calls a plan stale: configured, else three intervals (one missed cycle is normal)."""
        return self.extender.max_plan_age_s or max(3 * self.interval_s, 1.0)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``BROKER_A__B=v`` as ``{"a": {"b": v}}``; values as YAML scalars."""
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        if not all(path):
            raise InputError(key, "empty field name in the variable")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list):
            value = raw  # a scalar field given something YAML reads as a structure: let validation name it
        target = out
        for part in path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise InputError(key, f"{part} is a value, not a section")
            target = nested
        target[path[-1]] = value
    return out


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_service_config(path: Path | None, env: Mapping[str, str]) -> ServiceConfig:
    """The configuration in ``path`` (none: defaults) with the environment's overrides, validated whole.

    Relative paths in the file are resolved against the file's folder, so a config and its inventory can move
    together.
    """
    data: dict[str, Any] = {}
    if path is not None:
        empty = path.is_file() and path.stat().st_size == 0  # an empty file means "all defaults"
        document = {} if empty else read_document(path)
        if not isinstance(document, dict):
            raise InputError(str(path), "a service configuration is a mapping of fields")
        data = document
    overrides = _env_overrides(env)
    where = f"{path} with BROKER_* overrides" if path is not None and overrides else str(path or "BROKER_*")
    config = parse(ServiceConfig, _merge(data, overrides), where=where)
    return _resolve_paths(config, path.resolve().parent) if path is not None else config


def _resolve_paths(config: ServiceConfig, base: Path) -> ServiceConfig:
    def fix(value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else base / value

    scenario = config.fleet.scenario
    if scenario.endswith((".yaml", ".yml", ".json")) and not Path(scenario).is_absolute():
        scenario = str(base / scenario)
    return config.model_copy(update={
        "policy": fix(config.policy),
        "kubernetes_clusters": fix(config.kubernetes_clusters),
        "fleet": config.fleet.model_copy(update={"inventory": fix(config.fleet.inventory), "scenario": scenario}),
        "demand": config.demand.model_copy(update={"file": fix(config.demand.file), "yarn": fix(config.demand.yarn)}),
        "sinks": config.sinks.model_copy(update={"yarn": fix(config.sinks.yarn)}),
        "http": config.http.model_copy(update={
            "admin_tokens": fix(config.http.admin_tokens), "tls_cert": fix(config.http.tls_cert),
            "tls_key": fix(config.http.tls_key), "tls_client_ca": fix(config.http.tls_client_ca)}),
        "agents": config.agents.model_copy(update={
            "token_file": fix(config.agents.token_file), "tls_cert": fix(config.agents.tls_cert),
            "tls_key": fix(config.agents.tls_key), "tls_client_ca": fix(config.agents.tls_client_ca)}),
    })


__all__ = [
    "AgentsConfig",
    "DemandConfig",
    "DemandKind",
    "ExtenderSection",
    "FastPathConfig",
    "FleetConfig",
    "HttpConfig",
    "LeaderConfig",
    "LeaderKind",
    "LogConfig",
    "PlannerConfig",
    "PolicySourceConfig",
    "PolicySourceKind",
    "QuotaStatusConfig",
    "ServiceConfig",
    "SinksConfig",
    "UsageKind",
    "load_service_config",
]
