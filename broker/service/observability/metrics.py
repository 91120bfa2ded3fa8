"""Every Prometheus metric of the broker service, behind one object with small typed methods.

The control loop, the fast path, the agent hub and the leader election call ``ServiceMetrics`` methods with the
broker's own values (``Plan``, ``SolveReport``, ``RuntimeQuota``, ``SinkReport``, ``Resources``); no
``prometheus_client`` type leaks to them, so that the metric names, labels and units are decided here, once, and
``docs/operations.md``, the Grafana dashboard and the alert rules can be checked against this module by tests.

Conventions (Prometheus naming): every name starts with ``broker_``; amounts are in base units, so the resource
gauges carry a ``dimension`` label that is ``cpu_cores`` or ``memory_bytes`` (the broker holds millicores and MiB;
they are converted here, and ``UNLIMITED`` becomes ``+Inf``); durations are seconds; timestamps are Unix seconds.

Cardinality is bounded by configuration, never by the fleet: labels are sites, teams (quota groups), sinks, loop
steps, store operations, the replica identity, the YARN clusters and queues demand is read from, and the
Kubernetes clusters and the namespaces holding offline pods of no team. Nodes and pods are never a label:
10,000 nodes x a few series each would dominate the Prometheus server's memory for figures nobody graphs per
node. Per-node facts are aggregated before they get here (per site) or observed into a histogram.

Agent lag is such a case. A gauge per node would be 5,000-10,000 series that churn as nodes come and go. What
the operator needs instead is (a) the distribution of how late samples arrive, (b) whether any agent is late
enough to blind the fast path, and (c) how many agents are missing. So: ``broker_agent_sample_lag_seconds`` is a
histogram of (arrival - sample time) over every sample (a p99 of it is the fast path's reaction floor),
``broker_agent_lag_max_seconds`` is the largest time since the newest sample of any connected agent (it also
catches an agent whose stream is open but silent), and ``broker_agents_connected`` / ``broker_agents_expected``
count streams against the nodes that should have one. Which node is late is a log line (``node`` field), not a
label.

The extender's metrics (``broker_extender_*``) stay in ``broker.service.extender.metrics``: the extender runs
alone too (``broker serve extender``). In the service the extender is built on this object's ``registry``
(``Extender(config, registry=metrics.registry)``), so one ``/metrics`` shows both.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from broker.model import UNLIMITED, Plan, Resources, SolveReport, SolveStatus
from broker.quota import RuntimeQuota
from broker.service.sinks.base import SinkReport

DIMENSIONS = ("cpu_cores", "memory_bytes")
"""Values of the ``dimension`` label, in base units."""

_MIB = 2**20

_STEP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SOLVE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
_PUSH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_SHRINK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""2 s is a bucket edge: the fast path's budget, so that the alert's p99 is exact at the threshold."""
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class LoopStep(StrEnum):
    """The timed steps of one control-loop cycle, in order."""

    COLLECT = "collect"
    ESTIMATE = "estimate"
    QUOTA = "quota"
    PLAN = "plan"
    PUBLISH = "publish"
    PUSH = "push"


class PushPath(StrEnum):
    """Which path a push belongs to: the loop's whole-plan push or the fast path's shrink."""

    LOOP = "loop"
    FAST = "fast"


class PushFailure(StrEnum):
    """Why a push did not fully land (the ``reason`` label; the free-text error goes to the log)."""

    TIMEOUT = "timeout"
    """The loop's deadline cancelled the call: the peer hangs."""
    PEER = "peer"
    """The sink reported that its peer failed or refused (``SinkReport.ok`` false)."""
    PARTIAL = "partial"
    """The peer confirmed some nodes and not others; the rest are retried next round."""
    CRASH = "crash"
    """The sink raised instead of reporting: a bug in the sink."""


class DemandReadFailure(StrEnum):
    """Why a YARN cluster's demand was not read this cycle (the ``reason`` label; the error text goes to the log)."""

    TIMEOUT = "timeout"
    """No answer within ``demand.timeout_s``: the RM hangs, or its retries outlasted the budget."""
    PEER = "peer"
    """The RM failed or refused: unreachable, no active RM (standby only), an error status, a malformed answer."""
    INVALID = "invalid"
    """The RM answered, but what it asked for could not be turned into demand classes."""


class UnplannedPods(StrEnum):
    """Why offline pods of a team are left out of the Kubernetes demand (the ``reason`` label; pods of no team
    are counted per namespace instead, as unmapped)."""

    INVALID = "invalid"
    """The pod cannot be read the way the extender reads it, or asks for none of either managed resource."""
    CLASS_LABEL = "class_label"
    """Its class label is not a class name, or starts with ``yarn.`` or ``k8s.`` (the broker's own names)."""
    CLASS_CONFLICT = "class_conflict"
    """Its class label names the class of another team or cluster: class names are fleet-wide."""
    CLASS_LIMIT = "class_limit"
    """Its cluster has more classes than the limit even with shapes rounded up; the smallest are left out."""


class PolicySourceFailure(StrEnum):
    """Why the ``ElasticQuotaPolicy`` a replica reads the policy from (``policy_source``) did not give a new policy
    (the ``reason`` label; the last good policy stays in force in every case)."""

    INVALID = "invalid"
    """The spec does not validate: nothing of it was applied (the object's ``Accepted`` condition names the field)."""
    UNREACHABLE = "unreachable"
    """Listing or watching the objects failed: the API server is down, refuses (RBAC), or lacks the CRD."""
    MISSING = "missing"
    """The object is not there (never created, or deleted)."""
    STATUS = "status"
    """The ``Accepted`` condition could not be written to the object's status."""


def _amounts(resources: Resources) -> tuple[float, float]:
    """``(cpu cores, memory bytes)`` of ``resources``; ``UNLIMITED`` is ``+Inf``."""
    return _cores(resources.cpu_milli), _bytes(resources.memory_mib)


def _cores(milli: int) -> float:
    return math.inf if milli >= UNLIMITED else milli / 1000


def _bytes(mib: int) -> float:
    return math.inf if mib >= UNLIMITED else float(mib * _MIB)


def bound_gap(report: SolveReport) -> float:
    """``1 - objective / lp_bound``: how far the plan may be from the best possible one (0 = proven optimal).

    NaN when the cycle has no bound (the LP relaxation did not finish in time), so that a missing bound is not
    read as a perfect plan; 0 for an empty problem. Rounding noise below zero is clamped.
    """
    if report.status is SolveStatus.EMPTY:
        return 0.0
    if report.lp_bound <= 0:
        return math.nan
    return max(0.0, 1.0 - report.objective / report.lp_bound)


class ServiceMetrics:
    """The service's instruments, registered in ``registry`` (a fresh one when not given).

    ``clock`` gives Unix seconds; it dates the last successful cycle and the published plan (``plan age`` is read
    from it at scrape time, so that a stuck loop shows an age that grows).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._lock = threading.Lock()
        self._sites_planned: set[str] = set()
        self._sites_used: set[str] = set()
        self._teams: set[str] = set()
        self._leader_replica: str | None = None
        self._leading: bool | None = None
        self._published_at: float | None = None
        r = self.registry

        # Capacity, per site.
        self._pool_lendable = Gauge(
            "broker_pool_lendable", "Offline capacity the estimator says may be lent, in the published plan.",
            ["site", "dimension"], registry=r)
        self._pool_lent = Gauge(
            "broker_pool_lent", "Offline capacity placed (lent to offline work) in the published plan.",
            ["site", "dimension"], registry=r)
        self._pool_used = Gauge(
            "broker_pool_used", "Offline usage reported by the node agents.", ["site", "dimension"], registry=r)

        # Runtime quota, per team (quota group).
        self._team_runtime = Gauge(
            "broker_team_runtime_quota", "A team's runtime quota this interval.", ["team", "dimension"], registry=r)
        self._team_used = Gauge(
            "broker_team_used", "What a team's work holds (running and placed).", ["team", "dimension"], registry=r)
        self._team_borrowed = Gauge(
            "broker_team_borrowed", "Runtime quota above the team's min: borrowed from others, reclaimable.",
            ["team", "dimension"], registry=r)
        self._team_lent = Gauge(
            "broker_team_lent", "Part of the team's min it does not use this interval, lent to others.",
            ["team", "dimension"], registry=r)

        # Planner.
        self._solve_seconds = Histogram(
            "broker_planner_solve_seconds", "Planner run time per cycle.", buckets=_SOLVE_BUCKETS, registry=r)
        self._solves = Counter("broker_planner_solves", "Planner runs by how the plan was found.", ["status"],
                               registry=r)
        self._bound_gap = Gauge(
            "broker_planner_bound_gap_ratio", "1 - objective / LP bound of the last plan (NaN: no bound).",
            registry=r)
        self._objective = Gauge("broker_planner_objective", "Objective of the last plan.", registry=r)
        self._greedy_objective = Gauge(
            "broker_planner_greedy_objective", "Objective the greedy baseline reached on the same inputs.",
            registry=r)
        for gauge in (self._bound_gap, self._objective, self._greedy_objective):
            gauge.set(math.nan)  # no plan yet: not a perfect one

        # The loop.
        self._interval = Gauge("broker_loop_interval_seconds", "Configured seconds between two cycles.",
                               registry=r)
        self._step_seconds = Histogram(
            "broker_loop_step_seconds", "Duration of each step of a cycle.", ["step"], buckets=_STEP_BUCKETS,
            registry=r)
        self._step_failures = Counter("broker_loop_step_failures", "Steps that failed (the last safe state kept).",
                                      ["step"], registry=r)
        self._cycles = Counter("broker_loop_cycles", "Cycles run, by result.", ["result"], registry=r)
        self._last_success = Gauge(
            "broker_loop_last_success_timestamp_seconds", "When the last cycle completed without a failed step.",
            registry=r)
        self._plan_version = Gauge("broker_plan_version", "Version of the last plan this replica published.",
                                   registry=r)
        self._plan_version.set(-1)
        self._plan_age = Gauge(
            "broker_plan_age_seconds", "Seconds since this replica published a plan (NaN: never).", registry=r)
        self._plan_age.set_function(self._age_of_plan)

        # Sinks and the fast path.
        self._push_seconds = Histogram(
            "broker_push_seconds", "Duration of a push to a sink.", ["sink", "path"], buckets=_PUSH_BUCKETS,
            registry=r)
        self._push_failures = Counter(
            "broker_push_failures", "Pushes that did not fully land, by sink and reason.", ["sink", "path", "reason"],
            registry=r)
        self._shrinks = Counter(
            "broker_fastpath_shrinks", "Nodes whose offline capacity the fast path cut.", registry=r)
        self._shrink_seconds = Histogram(
            "broker_fastpath_shrink_seconds", "From the agent sample that crossed the safe limit to the sink's "
            "confirmation of the shrink.", ["sink"], buckets=_SHRINK_BUCKETS, registry=r)
        self._evictions = Counter("broker_evictions", "Offline containers removed by the fast path.", ["sink"],
                                  registry=r)

        # Node agents.
        self._agent_lag = Histogram(
            "broker_agent_sample_lag_seconds", "Arrival time minus sample time, per agent sample.",
            buckets=_LAG_BUCKETS, registry=r)
        self._agents_connected = Gauge("broker_agents_connected", "Node agents with an open stream.", registry=r)
        self._agents_expected = Gauge("broker_agents_expected", "Nodes of the inventory that should run an agent.",
                                      registry=r)
        self._agent_lag_max = Gauge(
            "broker_agent_lag_max_seconds", "Largest time since the newest sample of a connected agent.",
            registry=r)

        # High availability and the store.
        self._leader = Gauge("broker_leader", "1 while this replica runs the loop.", ["replica"], registry=r)
        self._leader_changes = Counter("broker_leader_changes", "Times this replica gained or lost the lead.",
                                       registry=r)
        self._store_errors = Counter("broker_store_errors", "Store operations that failed.", ["operation"],
                                     registry=r)

        # The ElasticQuotaPolicy the policy is read from (policy_source.kind kubernetes). Every reason starts at
        # 0, so that an alert on increase() sees the first failure.
        self._policy_source_failures = Counter(
            "broker_policy_source_failures", "Times the ElasticQuotaPolicy gave no new policy, by reason.",
            ["reason"], registry=r)
        for failure in PolicySourceFailure:
            self._policy_source_failures.labels(failure.value)

        # Demand read from the outside: the label values of each gauge's series, so that those a cycle no longer
        # reports are removed (and a follower drops them all).
        self._demand_series: dict[Gauge, set[tuple[str, ...]]] = {}

        # Demand read from the YARN ResourceManagers (demand.kind yarn). Clusters and queues are the RMs'
        # configuration, bounded like teams.
        self._yarn_read_seconds = Histogram(
            "broker_yarn_demand_read_seconds", "Duration of a demand read from a YARN cluster's ResourceManager.",
            ["cluster"], buckets=_PUSH_BUCKETS, registry=r)
        self._yarn_read_failures = Counter(
            "broker_yarn_demand_read_failures", "Demand reads from a YARN cluster that failed, by reason.",
            ["cluster", "reason"], registry=r)
        self._yarn_age = Gauge(
            "broker_yarn_demand_age_seconds", "Age of the demand the loop uses for a YARN cluster (+Inf: none).",
            ["cluster"], registry=r)
        self._yarn_pending = Gauge(
            "broker_yarn_demand_pending_containers", "Pending containers of a team's YARN apps.", ["team"],
            registry=r)
        self._yarn_unmapped = Gauge(
            "broker_yarn_demand_unmapped_containers", "Pending containers in YARN queues of no team.",
            ["cluster", "queue"], registry=r)

        # Demand read from the Kubernetes pods (demand.kind kubernetes). Parallel to the YARN family rather than
        # one family with a source label: the YARN series keep their names (dashboards, alerts), and the two
        # readings differ (a read per cycle with its duration vs a watch whose health is its age; containers in
        # queues vs pods in namespaces). Namespaces appear only when they hold offline pods of no team.
        self._kube_failures = Counter(
            "broker_kubernetes_demand_failures", "Lists or watches of a cluster's pods that failed.", ["cluster"],
            registry=r)
        self._kube_age = Gauge(
            "broker_kubernetes_demand_age_seconds",
            "Age of the pod demand the loop uses for a Kubernetes cluster (+Inf: none).", ["cluster"], registry=r)
        self._kube_pending = Gauge(
            "broker_kubernetes_demand_pending_pods", "Pending offline pods of a team, in planned classes.", ["team"],
            registry=r)
        self._kube_unmapped = Gauge(
            "broker_kubernetes_demand_unmapped_pods", "Offline pods in namespaces of no team.",
            ["cluster", "namespace"], registry=r)
        self._kube_unplanned = Gauge(
            "broker_kubernetes_demand_unplanned_pods", "Offline pods of a team left out of the demand, by reason.",
            ["cluster", "reason"], registry=r)

    # --- exposition ---------------------------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format: ``(body, content type)`` for a ``/metrics`` answer."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # --- the loop -----------------------------------------------------------------------------------------

    def loop_configured(self, interval_s: float) -> None:
        """Record the loop's interval (the plan-age alert compares against it)."""
        self._interval.set(interval_s)

    def step_finished(self, step: LoopStep, seconds: float, ok: bool) -> None:
        """One step of a cycle ran for ``seconds``; a failed one is also counted."""
        self._step_seconds.labels(step.value).observe(seconds)
        if not ok:
            self._step_failures.labels(step.value).inc()

    def cycle_finished(self, ok: bool) -> None:
        """A cycle ended; ``ok`` when no step failed (dates ``broker_loop_last_success_timestamp_seconds``)."""
        self._cycles.labels("ok" if ok else "failed").inc()
        if ok:
            self._last_success.set(self._clock())

    # --- decisions ------------------------------------------------------------------------------------------

    def planner_solved(self, report: SolveReport) -> None:
        """The planner ran: its time, status, objective against the greedy baseline, and gap to the bound."""
        self._solve_seconds.observe(report.solve_seconds)
        self._solves.labels(report.status.value).inc()
        self._objective.set(report.objective)
        self._greedy_objective.set(report.greedy_objective)
        self._bound_gap.set(bound_gap(report))

    def plan_published(self, plan: Plan) -> None:
        """``plan`` is now the current plan: its version, its date (for the age) and, per site, what may be lent
        and what was placed. Sites absent from the plan lose their series."""
        lendable: dict[str, list[int]] = {}
        for node in plan.nodes:
            sums = lendable.setdefault(node.site, [0, 0])
            sums[0] += node.lendable.cpu_milli
            sums[1] += node.lendable.memory_mib
        lent: dict[str, list[int]] = {}
        for team in plan.teams:
            for site, placed in team.placed_by_site.items():
                sums = lent.setdefault(site, [0, 0])
                sums[0] += placed.cpu_milli
                sums[1] += placed.memory_mib
        with self._lock:
            sites = lendable.keys() | lent.keys()
            self._sites_planned = self._replace(self._sites_planned, sites, (self._pool_lendable, self._pool_lent))
            for site in sites:
                cpu, memory = lendable.get(site, (0, 0))
                self._set_pair(self._pool_lendable, site, _cores(cpu), _bytes(memory))
                cpu, memory = lent.get(site, (0, 0))
                self._set_pair(self._pool_lent, site, _cores(cpu), _bytes(memory))
            self._published_at = self._clock()
            self._plan_version.set(plan.version)

    def offline_used(self, by_site: Mapping[str, Resources]) -> None:
        """The offline usage the agents report, summed per site; sites not given lose their series."""
        with self._lock:
            self._sites_used = self._replace(self._sites_used, by_site.keys(), (self._pool_used,))
            for site, used in by_site.items():
                self._set_pair(self._pool_used, site, *_amounts(used))

    def team_quota(self, quota: RuntimeQuota, used: Mapping[str, Resources]) -> None:
        """Every quota group's runtime quota, borrowed and lent parts, and ``used`` (what its work holds; a group
        missing from ``used`` holds nothing). Groups no longer in ``quota`` lose their series."""
        with self._lock:
            gone = self._teams - quota.groups.keys()
            for team in gone:
                self._forget(team)
            self._teams = set(quota.groups)
            for team, group in quota.groups.items():
                self._set_pair(self._team_runtime, team, *_amounts(group.runtime))
                self._set_pair(self._team_borrowed, team, *_amounts(group.borrowed))
                self._set_pair(self._team_lent, team, *_amounts(group.lent))
                held = used.get(team)
                self._set_pair(self._team_used, team, *(_amounts(held) if held is not None else (0.0, 0.0)))

    # --- sinks and the fast path ----------------------------------------------------------------------------

    def push_finished(self, report: SinkReport, path: PushPath = PushPath.LOOP) -> None:
        """A sink answered: its time, a failure (``peer`` or ``partial``) if any, and its evictions."""
        self._push_seconds.labels(report.sink, path.value).observe(report.seconds)
        if not report.ok:
            self._push_failures.labels(report.sink, path.value, PushFailure.PEER.value).inc()
        elif report.nodes_failed:
            self._push_failures.labels(report.sink, path.value, PushFailure.PARTIAL.value).inc()
        if report.evicted:
            self._evictions.labels(report.sink).inc(report.evicted)

    def push_failed(self, sink: str, reason: PushFailure, seconds: float, path: PushPath = PushPath.LOOP) -> None:
        """A push that produced no report: cancelled at the deadline (``timeout``) or raised (``crash``)."""
        self._push_seconds.labels(sink, path.value).observe(seconds)
        self._push_failures.labels(sink, path.value, reason.value).inc()

    def shrink_started(self, nodes: int) -> None:
        """The fast path decided to cut the offline capacity of ``nodes`` nodes."""
        self._shrinks.inc(nodes)

    def shrink_finished(self, report: SinkReport, since_sample_s: float) -> None:
        """A sink answered a fast-path shrink; ``since_sample_s`` runs from the agent sample that crossed the safe
        limit to now. Only a confirmed shrink (``report.ok``) counts towards the latency."""
        self.push_finished(report, PushPath.FAST)
        if report.ok:
            self._shrink_seconds.labels(report.sink).observe(since_sample_s)

    # --- node agents ----------------------------------------------------------------------------------------

    def agent_samples(self, lags_s: Iterable[float]) -> None:
        """Samples arrived, each ``lag`` seconds after it was taken (negative lags, from clock skew, count as 0)."""
        observe = self._agent_lag.observe
        for lag in lags_s:
            observe(max(0.0, lag))

    def agents_seen(self, connected: int, expected: int, max_lag_s: float) -> None:
        """The agent hub's periodic summary: open streams, nodes that should have one, and the largest time since
        the newest sample of a connected agent."""
        self._agents_connected.set(connected)
        self._agents_expected.set(expected)
        self._agent_lag_max.set(max_lag_s)

    # --- demand from the YARN ResourceManagers -------------------------------------------------------------

    def yarn_demand_read(self, cluster: str, seconds: float, failure: DemandReadFailure | None = None) -> None:
        """One cluster's demand read took ``seconds``; a failed one is also counted by ``failure``."""
        self._yarn_read_seconds.labels(cluster).observe(seconds)
        if failure is not None:
            self._yarn_read_failures.labels(cluster, failure.value).inc()

    def yarn_demand_used(self, ages_s: Mapping[str, float], pending: Mapping[str, int],
                         unmapped: Mapping[tuple[str, str], int]) -> None:
        """The YARN demand a cycle used: per cluster the age of its demand (``math.inf``: it contributes
        nothing), per team its pending containers, per (cluster, queue of no team) the pending containers nobody
        plans for. Keys not given lose their series."""
        with self._lock:
            self._replace_series(self._yarn_age, {(cluster,): age for cluster, age in ages_s.items()})
            self._replace_series(self._yarn_pending, {(team,): count for team, count in pending.items()})
            self._replace_series(self._yarn_unmapped, {(cluster, queue): n for (cluster, queue), n in unmapped.items()})

    # --- demand from the Kubernetes pods --------------------------------------------------------------------

    def kubernetes_demand_failed(self, cluster: str) -> None:
        """A list or watch of ``cluster``'s pods failed (called on the watch's thread)."""
        self._kube_failures.labels(cluster).inc()

    def kubernetes_demand_used(self, ages_s: Mapping[str, float], pending: Mapping[str, int],
                               unmapped: Mapping[tuple[str, str], int],
                               unplanned: Mapping[tuple[str, UnplannedPods], int]) -> None:
        """The pod demand a cycle used: per cluster the age of its demand (``math.inf``: it contributes
        nothing), per team its pending pods, per (cluster, namespace of no team) the offline pods nobody plans
        for, per (cluster, reason) the pods of a team left out. Keys not given lose their series."""
        with self._lock:
            self._replace_series(self._kube_age, {(cluster,): age for cluster, age in ages_s.items()})
            self._replace_series(self._kube_pending, {(team,): count for team, count in pending.items()})
            self._replace_series(self._kube_unmapped, {(cluster, ns): n for (cluster, ns), n in unmapped.items()})
            self._replace_series(self._kube_unplanned,
                                 {(cluster, reason.value): count for (cluster, reason), count in unplanned.items()})

    # --- high availability and the store --------------------------------------------------------------------

    def leadership(self, replica: str, leading: bool) -> None:
        """This replica (``replica``: its identity) leads or follows; a change of role is counted.

        A follower drops what only the leader decides (pool, team and planner figures, the plan's version and
        age): a deposed leader's last figures would otherwise stay exported beside the new leader's, and a
        ``max`` or ``sum`` across replicas would read them.
        """
        with self._lock:
            if self._leader_replica != replica:
                if self._leader_replica is not None:
                    self._leader.remove(self._leader_replica)
                self._leader_replica, self._leading = replica, None
            changed = self._leading is not None and self._leading != leading
            self._leading = leading
            self._leader.labels(replica).set(1 if leading else 0)
            if not leading:
                self._clear_decisions()
        if changed:
            self._leader_changes.inc()

    def store_error(self, operation: str) -> None:
        """A store operation failed. ``operation`` is a fixed name (``put_plan``, ``lease``), never a key."""
        self._store_errors.labels(operation).inc()

    def policy_source_failed(self, reason: PolicySourceFailure) -> None:
        """The ``ElasticQuotaPolicy`` the policy is read from gave no new policy this time, for ``reason``."""
        self._policy_source_failures.labels(reason.value).inc()

    # --- internals ------------------------------------------------------------------------------------------

    def _clear_decisions(self) -> None:
        """Forget the leader-only figures (called with the lock held)."""
        self._sites_planned = self._replace(self._sites_planned, (), (self._pool_lendable, self._pool_lent))
        self._sites_used = self._replace(self._sites_used, (), (self._pool_used,))
        for team in self._teams:
            self._forget(team)
        self._teams = set()
        for gauge in list(self._demand_series):
            self._replace_series(gauge, {})
        self._published_at = None
        self._plan_version.set(-1)
        for gauge in (self._bound_gap, self._objective, self._greedy_objective):
            gauge.set(math.nan)

    def _age_of_plan(self) -> float:
        published = self._published_at
        return math.nan if published is None else max(0.0, self._clock() - published)

    def _replace_series(self, gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
        """Give ``gauge`` exactly the series of ``values`` (label values -> value); the ones it had and
        ``values`` lacks are removed (called with the lock held)."""
        current = self._demand_series.get(gauge, set())
        for labels in current - values.keys():
            gauge.remove(*labels)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        self._demand_series[gauge] = set(values)

    @staticmethod
    def _set_pair(gauge: Gauge, key: str, cores: float, memory_bytes: float) -> None:
        gauge.labels(key, "cpu_cores").set(cores)
        gauge.labels(key, "memory_bytes").set(memory_bytes)

    @staticmethod
    def _replace(current: set[str], keys: Iterable[str], gauges: tuple[Gauge, ...]) -> set[str]:
        """Remove the series of the keys in ``current`` and not in ``keys``; the new key set."""
        new = set(keys)
        for key in current - new:
            for gauge in gauges:
                for dimension in DIMENSIONS:
                    gauge.remove(key, dimension)
        return new

    def _forget(self, team: str) -> None:
        for gauge in (self._team_runtime, self._team_used, self._team_borrowed, self._team_lent):
            for dimension in DIMENSIONS:
                gauge.remove(team, dimension)


__all__ = ["DIMENSIONS", "DemandReadFailure", "LoopStep", "PolicySourceFailure", "PushFailure", "PushPath",
           "ServiceMetrics", "UnplannedPods", "bound_gap"]
