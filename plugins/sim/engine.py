"""The discrete-time co-location simulation: the real estimators and guard, driven by simulated sources and sinks.

Every step (``step_s``, default 10 s), for every policy side by side on the same inputs:

1. the online usage of each node moves (from the scenario's source) and, unless its agent is in an outage, is
   reported to the shared ``UsageHistory``;
2. containers whose time is up finish; a job's AM finishes with its last worker;
3. a node is **interfered** when it runs offline work and online usage + offline usage exceeds its safe limit
   (``safe_limit``: 85% CPU, 90% memory of capacity by default) in CPU or memory. The guard
   (``broker.capacity.guard``) then kills offline containers on that node by the kill score until it is back
   under the limit. A killed worker goes back to its
   job's queue; a killed AM restarts its job (its running workers are killed too);
4. the policy's estimator proposes lendable capacity, and its anti-churn rule decides what is published;
5. the ``broker`` policy plans every ``plan_interval_s`` with the real placement planner (``plugins.sim.planning``)
   and keeps each of the plan's per-node placements as a **reservation** of that many containers of that class
   on that node until the next plan: what the plan placed starts at once, and when one of its containers ends (or
   is killed) its slot goes to the next queued container of the same class, new arrivals included;
6. queued jobs are placed first-come first-served on the published capacity that no reservation holds: the AM
   first (for the ``broker`` policy, only on ``stable`` nodes and within their stable lendable capacity; the
   baselines, like the schedulers they stand for, put it anywhere), then as many workers as fit, on nodes with
   disks when the job needs them. For the ``broker`` policy this first-fit is the sinks' own scheduler filling
   capacity between two plans (as YARN does inside a NodeManager's size): it places workers only at their team's
   data site, so every cross-site read (and so every link's bandwidth) is decided by the planner.

Offline containers use their full memory request and ``offline_cpu_usage`` of their CPU request. The oracle lends,
every step, exactly what the safe limit leaves above that step's true online usage and the system reserve.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from broker.capacity import Fleet, Lendable, Published, UsageHistory, estimator_named, resync, resync_rule_for
from broker.capacity.forecast import ForecastConfig
from broker.capacity.guard import Running, choose_victims
from broker.model import Inventory, Plan, Resources
from broker.scheduler import PlacementProblem, QuotaDocument, TeamQuota, solve
from plugins.sim.offline import Job
from plugins.sim.online import OnlineUsage
from plugins.sim.planning import (
    PLAN_QUEUE_LIMIT,
    ClassKey,
    LinkStats,
    PlanInputs,
    PlanStats,
    ProblemBuilder,
    net_team_quota,
)
from plugins.sim.queues import KeyedQueue
from plugins.sim.results import PolicyResult, WaitHistogram
from plugins.sim.scenario import Scenario
from plugins.sim.teams import Holding, TeamQuotas

SCAN_LIMIT = 400
"""Queued jobs looked at per step (a scheduler does not rescan an unbounded queue every cycle)."""
SERIES_EVERY_S = 300
"""Resolution of the utilisation time series in the report."""

AM_STABLE_SHARE = 0.8
"""The part of a node's stable lendable capacity the ``broker`` policy gives to AMs. The planner packs AMs onto
stable nodes (workers go elsewhere), so a node can hold nothing but AMs; the fifth kept back absorbs the stable
estimate's error at the evening peak, where an AM's death would restart its job (seen without it: 8 AMs killed in
the default two days)."""

_ShapeKey = tuple[int, int, bool, int, int]
"""Worker cpu, memory, needs disk, data site index (-1: anywhere) and read Mbit/s: what decides where it fits."""


@dataclass
class _Job:
    """A job's progress in one policy's run."""

    job: Job
    pending: int
    key: ClassKey
    shape: _ShapeKey  # where its workers fit, with and without their disk need (see ``PolicyRun._shape_key``)
    shape_any: _ShapeKey
    running: int = 0
    done: int = 0
    am_group: int = -1
    groups: list[int] = field(default_factory=list)


class PolicyRun:
    """One policy's state through the simulation."""

    def __init__(self, name: str, scenario: Scenario, inventory: Inventory, fleet: Fleet,
                 forecast: ForecastConfig) -> None:
        self.name = name
        self.scenario = scenario
        self.fleet = fleet
        self.estimator = estimator_named(name, forecast, scenario.static_fraction)
        self.rule = resync_rule_for(name)
        self.published: Published | None = None
        n = len(fleet)
        self.alloc_cpu = np.zeros(n, dtype=np.int64)
        self.alloc_mem = np.zeros(n, dtype=np.int64)
        self.am_cpu = np.zeros(n, dtype=np.int64)
        self.am_mem = np.zeros(n, dtype=np.int64)
        self.disk = np.array([node.disk for node in inventory.nodes], dtype=np.bool_)
        self.stable = fleet.stable
        self.am_needs_stable = name == "broker"
        self.u = scenario.offline_cpu_usage
        # Placements ("groups"): identical containers of one job on one node, started in the same step.
        self.g_node: list[int] = []
        self.g_count: list[int] = []
        self.g_cpu: list[int] = []
        self.g_mem: list[int] = []
        self.g_start: list[float] = []
        self.g_job: list[int] = []
        self.g_am: list[bool] = []
        self.node_groups: list[list[int]] = [[] for _ in range(n)]
        self.team_groups: dict[str, set[int]] = {}  # running placements per team, for quota reclaim
        self.ends: dict[int, list[int]] = {}
        self.jobs: list[_Job] = []
        self.waiting: KeyedQueue[ClassKey] = KeyedQueue()  # jobs whose AM is not running, in queue order
        # What each queued job asks (its AM and pending workers), and its sum per team: a queued job's demand does
        # not change while it waits (no AM, so no worker runs or starts), so ``share`` reads the sums instead of
        # walking a queue of thousands of jobs at every quota interval.
        self.queued_demand: dict[int, tuple[int, int]] = {}
        self.queued_by_team: dict[str, tuple[int, int]] = {}
        self.shapes: dict[ClassKey, tuple[_ShapeKey, _ShapeKey]] = {}  # a class's worker shapes (as in ``_Job``)
        # Jobs whose AM runs and that still want workers. An entry stays until ``place`` finds its job done or its
        # AM dead, so a job may briefly have a stale entry, and a second one if its AM restarts meanwhile; every
        # reader counts entries as they stand.
        self.started: KeyedQueue[ClassKey] = KeyedQueue()
        self.in_started: set[int] = set()  # jobs with an entry in ``started`` that ``place`` has not dropped
        # Jobs whose entries may have become droppable (AM gone, or nothing pending) since ``place`` last looked:
        # the only entries of blocked classes it must look at.
        self.to_check: set[int] = set()
        self.offset_s = scenario.warmup_steps * scenario.step_s  # job arrivals count from the measured start
        self.result = PolicyResult(policy=name)
        self.quotas: TeamQuotas | None = None
        if name == "broker" and scenario.quota is not None:
            self.quotas = TeamQuotas(scenario.quota_policy(), [t.name for t in scenario.teams],
                                     scenario.quota_interval_s, scenario.reclaim_grace_s)
        self.waits = WaitHistogram(scenario.step_s)
        # Placement reads: per placement, Mbit/s per container and the link it reads over (None: local or none).
        self.g_read: list[int] = []
        self.g_pair: list[frozenset[str] | None] = []
        self.g_res: list[int] = []  # the reservation a placement holds a slot of, -1 for none
        self.planning = name == "broker"
        sites = {site.name: i for i, site in enumerate(scenario.sites)}
        self.site_of = np.array([sites[node.site] for node in inventory.nodes], dtype=np.int64)
        self.at_site = [self.site_of == i for i in range(len(scenario.sites))]  # per site, its nodes as a mask
        self.site_names = [site.name for site in scenario.sites]
        self.team_site = {t.name: sites[t.data_site] if t.data_site else -1 for t in scenario.teams}
        self.team_read = {t.name: t.read_mbps if t.data_site else 0 for t in scenario.teams}
        self.nic = np.array([node.nic_mbps - node.reserved.network_mbps for node in inventory.nodes], dtype=np.int64)
        self.net_used = np.zeros(n, dtype=np.int64)
        self.link_reads: dict[frozenset[str], int] = {}
        self.link_free = {frozenset((link.a, link.b)): max(link.capacity_mbps - link.online_used_mbps, 0)
                          for link in scenario.links}
        self.res_link: dict[frozenset[str], int] = {}  # reads that unused worker slots at other sites hold
        self.node_index = {node.name: i for i, node in enumerate(inventory.nodes)}
        self.builder = ProblemBuilder(inventory, scenario.teams, scenario.am_shape) if self.planning else None
        self.plan_stats = PlanStats()
        self.link_stats = LinkStats(inventory.links)
        self.next_plan_s = float("-inf")
        self.last_problem: PlacementProblem | None = None  # the latest plan and its problem (for tests and reports)
        self.last_plan: Plan | None = None
        # Reservations of the current plan (ids from ``r_base`` on): node, class key, AM or worker, slots, used.
        self.r_node: list[int] = []
        self.r_key: list[ClassKey] = []
        self.r_am: list[bool] = []
        self.r_slots: list[int] = []
        self.r_used: list[int] = []
        self.r_base = 0
        self.res_by: dict[tuple[ClassKey, bool], list[int]] = {}
        self.res_free: dict[tuple[ClassKey, bool], int] = {}
        self.res_cpu = np.zeros(n, dtype=np.int64)  # per node, capacity held by unused slots
        self.res_mem = np.zeros(n, dtype=np.int64)
        self.res_net = np.zeros(n, dtype=np.int64)

    # --- step phases --------------------------------------------------------------------------------------------

    def arrive(self, jobs: list[Job]) -> None:
        for job in jobs:
            state = _Job(job=job, pending=job.instances, key=(job.team, job.cpu_milli, job.memory_mib, job.needs_disk),
                         shape=self._shape_key(job, job.needs_disk), shape_any=self._shape_key(job, False))
            self.jobs.append(state)
            self.shapes.setdefault(state.key, (state.shape, state.shape_any))
            self._enqueue(len(self.jobs) - 1)

    def finish(self, step: int) -> None:
        for g in self.ends.pop(step, ()):
            count = self.g_count[g]
            if count == 0:
                continue
            self._release(g, count)
            j = self.g_job[g]
            state = self.jobs[j]
            if self.g_am[g]:
                continue
            state.running -= count
            state.done += count
            if state.pending == 0 and state.running == 0 and state.am_group >= 0:
                am = state.am_group
                state.am_group = -1
                self.to_check.add(j)
                self._release(am, self.g_count[am])

    def guard(self, now_s: float, online_cpu: np.ndarray, online_mem: np.ndarray) -> None:
        f = self.fleet
        used_cpu = online_cpu + self.alloc_cpu * self.u
        used_mem = online_mem + self.alloc_mem
        over_cpu = used_cpu - f.cpu_milli * self.scenario.safe_limit.cpu
        over_mem = used_mem - f.memory_mib * self.scenario.safe_limit.memory
        # Offline work interferes only where it runs: a node whose online load alone passes the limit is not
        # counted against a lending policy (online-only would be charged too).
        over = ((over_cpu > 0) | (over_mem > 0)) & ((self.alloc_cpu > 0) | (self.alloc_mem > 0))
        self.result.add_usage(used_cpu, used_mem, f, int(over.sum()))
        for node in np.flatnonzero(over):
            alive = [g for g in self.node_groups[node] if self.g_count[g] > 0]
            self.node_groups[node] = alive
            running = [Running(g, self.g_count[g], self.g_cpu[g], self.g_mem[g], self.g_start[g], self.g_am[g])
                       for g in alive]
            for kill in choose_victims(int(np.ceil(over_cpu[node])), int(np.ceil(over_mem[node])), running, self.u):
                self._kill(kill.key, kill.count)

    def share(self, now_s: float, lendable: Lendable) -> None:
        """At each quota interval: runtime quota per team from the pool and demand, then quota reclaim."""
        quotas = self.quotas
        if quotas is None or not quotas.due(now_s):
            return
        pending = dict(self.queued_by_team)
        am = self.scenario.am_shape
        for j in self.started:
            state = self.jobs[j]
            job = state.job
            cpu, mem = pending.get(job.team, (0, 0))
            cpu += state.pending * job.cpu_milli + (am.cpu_milli if state.am_group < 0 else 0)
            mem += state.pending * job.memory_mib + (am.memory_mib if state.am_group < 0 else 0)
            pending[job.team] = (cpu, mem)
        pool = Resources.exact(int(lendable.cpu_milli.sum()), int(lendable.memory_mib.sum()))
        quotas.recompute(now_s, pool, pending)
        quotas.record(now_s - self.offset_s)
        for g, count in quotas.reclaim(now_s, self._holdings).items():
            self._kill(g, count, reclaim=True)

    def _holdings(self, team: str) -> Iterator[Holding]:
        """What ``team`` runs, in the order reclaim picks it: workers before AMs, the most recently started first
        (placements started in the same step in the order of ``team_groups``; both sorts are stable). Reclaim
        reads only the first few of a team's thousands, so they are made as it reads."""
        groups = self.team_groups.get(team, ())
        g_am, g_start = self.g_am, self.g_start
        for part in ([g for g in groups if not g_am[g]], [g for g in groups if g_am[g]]):
            part.sort(key=g_start.__getitem__, reverse=True)
            for g in part:
                yield Holding(g, team, self.g_count[g], self.g_cpu[g], self.g_mem[g], g_start[g], g_am[g])

    def publish(self, history: UsageHistory, now_s: float) -> Lendable:
        proposed = self.estimator.estimate(self.fleet, history, now_s)
        self.published = resync(self.published, proposed, self.fleet, now_s, self.rule)
        return self.published.lendable

    def place(self, step: int, now_s: float, lendable: Lendable) -> None:
        """Give published capacity to queued work: started jobs' workers first, then new jobs in arrival order."""
        free_cpu = np.maximum(lendable.cpu_milli - self.alloc_cpu - self.res_cpu, 0)
        free_mem = np.maximum(lendable.memory_mib - self.alloc_mem - self.res_mem, 0)
        # Worker shapes (cpu, memory, needs_disk, data site, read) that no node fits any more this step: later jobs
        # asking for them are passed over without looking at the nodes again.
        exhausted: set[_ShapeKey] = set()
        # Classes whose workers cannot start any more this step (their shape is exhausted or their team has no
        # room for one more): both only grow during one call, so their jobs are passed over without a look.
        stuck: set[ClassKey] = set()
        jobs = self.jobs
        done: list[int] = []  # entries to drop
        looked: set[int] = set()
        for ticket, j in self.started.scan(stuck.__contains__):
            looked.add(ticket)
            state = jobs[j]
            if state.am_group < 0 or state.pending == 0:
                done.append(ticket)  # its AM died (it is back with the new jobs) or it has everything it asked for
                self.in_started.discard(j)
                continue
            if not self._place_workers(j, free_cpu, free_mem, exhausted, step, now_s):
                stuck.add(state.key)
            if state.pending == 0:
                done.append(ticket)
                self.in_started.discard(j)
        # The entries of stuck classes not looked at: their jobs no longer change in this call, so the ones that
        # are done or lost their AM (all among ``to_check``) are dropped as a walk over every entry would.
        for j in self.to_check:
            state = jobs[j]
            if state.am_group < 0 or state.pending == 0:
                for ticket in self.started.tickets_of(j):
                    if ticket not in looked:
                        done.append(ticket)
                        self.in_started.discard(j)
        self.to_check.clear()
        self.started.discard(done)
        am = self.scenario.am_shape
        am_ok = self._am_room(lendable) if self.am_needs_stable else np.ones(len(self.fleet), dtype=np.bool_)
        # A team's room only shrinks during one call, so a team (or team and shape) found at its quota stays so.
        at_quota: set[tuple[str, int, int]] = set()

        def passed_over(key: ClassKey) -> bool:
            shape, shape_any = self.shapes[key]
            if shape in exhausted or shape_any in exhausted:
                return True  # its workers would not fit anywhere: do not hold an AM for it yet
            return self.quotas is not None and self._at_quota(key, at_quota)  # its team is at its runtime quota

        placed: list[int] = []
        for scanned, (_, j) in enumerate(self.waiting.scan(passed_over), start=1):
            fits = am_ok & (free_cpu >= am.cpu_milli) & (free_mem >= am.memory_mib)
            candidates = np.flatnonzero(fits)
            if len(candidates) == 0 or scanned > SCAN_LIMIT:
                break  # every job needs the same AM shape: nobody else starts this step (the rest keep their place)
            node = int(candidates[0])
            jobs[j].am_group = self._start(j, node, 1, am.cpu_milli, am.memory_mib, True, step, now_s)
            placed.append(j)
            free_cpu[node] -= am.cpu_milli
            free_mem[node] -= am.memory_mib
            if self.am_needs_stable:
                am_ok[node] = self._am_room(lendable, node)
            self._place_workers(j, free_cpu, free_mem, exhausted, step, now_s)
            if jobs[j].pending > 0 and j not in self.in_started:
                self.in_started.add(j)
                self.started.append(j, jobs[j].key)
        self._dequeue(placed)

    # --- the planner (``broker`` policy) -------------------------------------------------------------------------

    def plan(self, now_s: float, lendable: Lendable) -> None:
        """At each planning interval: a new plan of the queued work on what is free; its placements replace the
        previous plan's reservations (see the module docstring)."""
        if self.builder is None or now_s < self.next_plan_s:
            return
        self.next_plan_s = now_s + self.scenario.plan_interval_s
        self._drop_reservations()
        inputs = PlanInputs(
            free_cpu=np.maximum(lendable.cpu_milli - self.alloc_cpu, 0),
            free_mem=np.maximum(lendable.memory_mib - self.alloc_mem, 0),
            nic_free=np.maximum(self.nic - self.net_used, 0),
            am_room=self._am_room(lendable),
            running_workers_wanted={}, waiting_jobs={}, link_reads=self.link_reads, quota=self._planner_quota())
        for j in self.started:
            state = self.jobs[j]
            if state.am_group >= 0 and state.pending > 0:
                key = state.key
                inputs.running_workers_wanted[key] = inputs.running_workers_wanted.get(key, 0) + state.pending
        for j in self.waiting.head(PLAN_QUEUE_LIMIT):
            state = self.jobs[j]
            if state.am_group < 0:
                key = state.key
                jobs, workers = inputs.waiting_jobs.get(key, (0, 0))
                inputs.waiting_jobs[key] = (jobs + 1, workers + state.pending)
        if not inputs.running_workers_wanted and not inputs.waiting_jobs:
            return
        problem, kinds = self.builder.build(inputs)
        result = solve(problem, time_limit_s=self.scenario.plan_time_limit_s, seed=self.scenario.seed, now_s=now_s,
                       version=self.plan_stats.solves, interval_s=self.scenario.plan_interval_s).plan
        self.plan_stats.add(problem, result, kinds)
        self.last_problem, self.last_plan = problem, result
        for node_plan in result.nodes:
            node = self.node_index[node_plan.node]
            for p in node_plan.placements:
                key, kind = kinds[p.demand_class]
                self._reserve(node, key, kind == "am", p.count)

    def _planner_quota(self) -> QuotaDocument:
        """Each team's quota for the planner, net of what it runs (uncapped when the scenario has no quota)."""
        quotas = self.quotas
        if quotas is None or quotas.runtime is None:
            return QuotaDocument(teams={t.name: TeamQuota() for t in self.scenario.teams})
        teams = {}
        for team in quotas.teams:
            effective = quotas.runtime.groups[team].min
            unused_min = (max(effective.cpu_milli - quotas.used_cpu[team], 0),
                          max(effective.memory_mib - quotas.used_mem[team], 0))
            teams[team] = net_team_quota(quotas.room(team), unused_min, quotas.policy.group(team).weight.cpu)
        return QuotaDocument(teams=teams)

    def _reserve(self, node: int, key: ClassKey, is_am: bool, slots: int) -> None:
        r = len(self.r_node)
        self.r_node.append(node)
        self.r_key.append(key)
        self.r_am.append(is_am)
        self.r_slots.append(slots)
        self.r_used.append(0)
        self.res_by.setdefault((key, is_am), []).append(r)
        self._account(r, slots)

    def _hold(self, r: int, count: int) -> None:
        """``count`` slots of reservation ``r`` taken by starting containers (positive) or freed (negative)."""
        self.r_used[r] += count
        self._account(r, -count)

    def _account(self, r: int, free: int) -> None:
        """Reservation ``r`` has ``free`` more unused slots: they hold their node's capacity and NIC room."""
        key, is_am, node = self.r_key[r], self.r_am[r], self.r_node[r]
        self.res_free[(key, is_am)] = self.res_free.get((key, is_am), 0) + free
        cpu, mem = (self.scenario.am_shape.cpu_milli, self.scenario.am_shape.memory_mib) if is_am else key[1:3]
        self.res_cpu[node] += free * cpu
        self.res_mem[node] += free * mem
        if not is_am:
            read = self.team_read[key[0]]
            self.res_net[node] += free * read
            data = self.team_site[key[0]]
            if read and data >= 0 and data != self.site_of[node]:
                pair = frozenset((self.site_names[data], self.site_names[self.site_of[node]]))
                self.res_link[pair] = self.res_link.get(pair, 0) + free * read

    def _drop_reservations(self) -> None:
        """The previous plan's reservations end: running containers keep their place, unused slots are freed."""
        self.r_base = len(self.r_node)
        self.res_by.clear()
        self.res_free.clear()
        self.res_cpu[:] = 0
        self.res_mem[:] = 0
        self.res_net[:] = 0
        self.res_link.clear()

    def fill(self, step: int, now_s: float, lendable: Lendable) -> None:
        """Start queued containers in the free slots of the plan's reservations: workers of running jobs first,
        then waiting jobs' AMs (each followed by its workers), in arrival order."""
        if not any(free > 0 for free in self.res_free.values()):
            return
        free_cpu = lendable.cpu_milli - self.alloc_cpu
        free_mem = lendable.memory_mib - self.alloc_mem
        res_free = self.res_free
        # Classes with free worker slots; starting workers only uses slots up, so a class that has none left
        # gets none back during this call.
        open_keys = {key for (key, is_am), free in res_free.items() if not is_am and free > 0}
        # Per reservation class, how many of its reservations (from the front) are full or on a node without room
        # for one more: neither comes back during one call (slots are only taken, free capacity only shrinks), so
        # the class's next job starts looking after them instead of walking a plan's thousands of nodes again.
        passed: dict[tuple[ClassKey, bool], int] = {}
        for _, j in self.started.scan(lambda key: key not in open_keys) if open_keys else ():
            state = self.jobs[j]
            if state.am_group >= 0 and state.pending > 0:
                self._fill_workers(j, free_cpu, free_mem, step, now_s, passed)
                if res_free[(state.key, False)] <= 0:
                    open_keys.discard(state.key)
        am = self.scenario.am_shape
        if not any(free > 0 for (_, is_am), free in self.res_free.items() if is_am):
            return

        def passed_over(key: ClassKey) -> bool:
            """No AM slot left for the class, or no quota room for its AM and one worker (neither comes back
            during this call: slots are only used up or clipped, quota room only shrinks)."""
            team, cpu_milli, memory_mib, _ = key
            return res_free.get((key, True), 0) <= 0 or self._allowed(team, am.cpu_milli, am.memory_mib, 1) == 0 or (
                self._allowed(team, cpu_milli, memory_mib, 1) == 0)

        placed: list[int] = []
        for _, j in self.waiting.scan(passed_over, within=PLAN_QUEUE_LIMIT):
            state = self.jobs[j]
            key = state.key
            reservations = self.res_by[(key, True)]
            for index in range(passed.get((key, True), 0), len(reservations)):
                r = reservations[index]
                if self.r_slots[r] <= self.r_used[r]:
                    _pass(passed, (key, True), index)
                    continue
                node = self.r_node[r]
                if not self._am_room(lendable, node):
                    # The plan put more AMs here than the node's stable capacity holds: they would be at risk.
                    self.plan_stats.clipped_ams += self.r_slots[r] - self.r_used[r]
                    self._account(r, self.r_used[r] - self.r_slots[r])
                    self.r_slots[r] = self.r_used[r]
                    _pass(passed, (key, True), index)
                    continue
                if free_cpu[node] < am.cpu_milli or free_mem[node] < am.memory_mib:
                    _pass(passed, (key, True), index)
                    continue
                state.am_group = self._start(j, node, 1, am.cpu_milli, am.memory_mib, True, step, now_s, res=r)
                placed.append(j)
                self.plan_stats.started_reserved[state.job.team] += 1
                free_cpu[node] -= am.cpu_milli
                free_mem[node] -= am.memory_mib
                self._fill_workers(j, free_cpu, free_mem, step, now_s, passed)
                if state.pending > 0 and j not in self.in_started:
                    self.in_started.add(j)
                    self.started.append(j, key)
                break
        self._dequeue(placed)

    def _fill_workers(self, j: int, free_cpu: np.ndarray, free_mem: np.ndarray, step: int, now_s: float,
                      passed: dict[tuple[ClassKey, bool], int]) -> None:
        """Start job ``j``'s pending workers in the free slots of its class's worker reservations, in plan order
        (``passed``: see ``fill``)."""
        state = self.jobs[j]
        job = state.job
        key = state.key
        left = self._allowed(job.team, job.cpu_milli, job.memory_mib, state.pending)
        if left <= 0 or self.res_free.get((key, False), 0) <= 0:
            return
        slots, used = self.r_slots, self.r_used
        reservations = self.res_by[(key, False)]
        for index in range(passed.get((key, False), 0), len(reservations)):
            r = reservations[index]
            if slots[r] <= used[r]:
                _pass(passed, (key, False), index)
                continue
            node = self.r_node[r]
            take = min(slots[r] - used[r], left, int(free_cpu[node]) // job.cpu_milli,
                       int(free_mem[node]) // job.memory_mib)
            if take <= 0:
                _pass(passed, (key, False), index)
                continue
            self._start(j, node, take, job.cpu_milli, job.memory_mib, False, step, now_s, res=r)
            self.plan_stats.started_reserved[job.team] += take
            free_cpu[node] -= take * job.cpu_milli
            free_mem[node] -= take * job.memory_mib
            left -= take
            if left == 0:
                return

    def _am_room(self, lendable: Lendable, node: int | slice = slice(None)) -> Any:
        """Where one more AM fits the ``broker`` policy's rule: a ``stable`` node, with the AMs it runs within
        ``AM_STABLE_SHARE`` of its stable lendable capacity (per node, or for one ``node``)."""
        am = self.scenario.am_shape
        return self.stable[node] & (
            lendable.stable_cpu_milli[node] * AM_STABLE_SHARE - self.am_cpu[node] >= am.cpu_milli) & (
            lendable.stable_memory_mib[node] * AM_STABLE_SHARE - self.am_mem[node] >= am.memory_mib)

    def _at_quota(self, key: ClassKey, at_quota: set[tuple[str, int, int]]) -> bool:
        """True when the team of a job of class ``key`` cannot start its AM and one worker within its runtime quota
        (remembered)."""
        am = self.scenario.am_shape
        team, cpu_milli, memory_mib, _ = key
        team_key = (team, 0, 0)
        shape_key = (team, cpu_milli, memory_mib)
        if team_key in at_quota or shape_key in at_quota:
            return True
        if self._allowed(team, am.cpu_milli, am.memory_mib, 1) == 0:
            at_quota.add(team_key)
            return True
        if self._allowed(team, cpu_milli, memory_mib, 1) == 0:
            at_quota.add(shape_key)
            return True
        return False

    def _allowed(self, team: str, cpu_milli: int, memory_mib: int, wanted: int) -> int:
        """How many of ``wanted`` containers of this shape the team's runtime quota still lets start."""
        if self.quotas is None:
            return wanted
        room_cpu, room_mem = self.quotas.room(team)
        return min(wanted, room_cpu // cpu_milli if cpu_milli else wanted,
                   room_mem // memory_mib if memory_mib else wanted)

    def _shape_key(self, job: Job, needs_disk: bool) -> _ShapeKey:
        if not self.planning:
            return (job.cpu_milli, job.memory_mib, needs_disk, -1, 0)
        return (job.cpu_milli, job.memory_mib, needs_disk, self.team_site[job.team], self.team_read[job.team])

    @staticmethod
    def _exhausted(state: _Job, exhausted: set[_ShapeKey]) -> bool:
        """True when no node fits the job's workers any more this step (a shape that fits nowhere without a disk
        fits nowhere with one either)."""
        return state.shape in exhausted or state.shape_any in exhausted

    def _place_workers(self, j: int, free_cpu: np.ndarray, free_mem: np.ndarray,
                       exhausted: set[_ShapeKey], step: int, now_s: float) -> bool:
        """First-fit as many of job ``j``'s pending workers as the free capacity (and its team's quota) holds; for
        the planning policy within each NIC's room, at the team's data site first, then at other sites only as far
        as the link's room (what neither running reads nor the plan's unused reservations hold) allows. False when
        it did not look, because the job's shape is exhausted or its team's quota has no room left for it."""
        state = self.jobs[j]
        job = state.job
        if self._exhausted(state, exhausted):
            return False
        allowed = self._allowed(job.team, job.cpu_milli, job.memory_mib, state.pending)
        if allowed <= 0:
            return False
        fit = np.minimum(free_cpu // job.cpu_milli, free_mem // job.memory_mib)
        if job.needs_disk:
            fit = np.where(self.disk, fit, 0)
        left = allowed
        site, read = self.team_site[job.team], self.team_read[job.team]
        if not self.planning or site < 0:
            left -= self._first_fit(j, fit, left, free_cpu, free_mem, step, now_s)
        else:
            if read > 0:
                fit = np.minimum(fit, np.maximum(self.nic - self.net_used - self.res_net, 0) // read)
            for other in [site, *(s for s in range(len(self.site_names)) if s != site)]:
                cap = left
                if other != site and read > 0:
                    pair = frozenset((self.site_names[site], self.site_names[other]))
                    room = self.link_free.get(pair, 0) - self.link_reads.get(pair, 0) - self.res_link.get(pair, 0)
                    cap = min(cap, max(room, 0) // read)
                if cap > 0:
                    left -= self._first_fit(j, np.where(self.at_site[other], fit, 0), cap, free_cpu, free_mem,
                                            step, now_s)
                if left == 0:
                    break
        if left > 0:
            exhausted.add(state.shape)  # it took everything that fits this shape
        return True

    def _first_fit(self, j: int, fit: np.ndarray, want: int, free_cpu: np.ndarray, free_mem: np.ndarray, step: int,
                   now_s: float) -> int:
        """Start up to ``want`` of job ``j``'s workers, first-fit over ``fit`` (per node, how many fit); returns
        how many started."""
        job = self.jobs[j].job
        nodes = np.flatnonzero(fit)
        counts = fit[nodes]
        last = int(np.searchsorted(np.cumsum(counts), want))
        left = want
        for k in range(min(last + 1, len(nodes))):
            node = int(nodes[k])
            take = int(min(counts[k], left))
            if take <= 0:
                break
            self._start(j, node, take, job.cpu_milli, job.memory_mib, False, step, now_s)
            self.plan_stats.started_fallback[job.team] += take
            left -= take
            free_cpu[node] -= take * job.cpu_milli
            free_mem[node] -= take * job.memory_mib
        return want - left

    # --- bookkeeping --------------------------------------------------------------------------------------------

    def _start(self, j: int, node: int, count: int, cpu: int, mem: int, is_am: bool, step: int, now_s: float,
               res: int = -1) -> int:
        g = len(self.g_node)
        state = self.jobs[j]
        read, pair = 0, None
        if self.planning and not is_am:
            read = self.team_read[state.job.team]
            data = self.team_site[state.job.team]
            if read and data >= 0 and data != self.site_of[node]:
                pair = frozenset((self.site_names[data], self.site_names[self.site_of[node]]))
                self.link_reads[pair] = self.link_reads.get(pair, 0) + read * count
            self.net_used[node] += read * count
        self.g_read.append(read)
        self.g_pair.append(pair)
        self.g_res.append(res)
        if res >= 0:
            self._hold(res, count)
        self.g_node.append(node)
        self.g_count.append(count)
        self.g_cpu.append(cpu)
        self.g_mem.append(mem)
        self.g_start.append(now_s)
        self.g_job.append(j)
        self.g_am.append(is_am)
        self.node_groups[node].append(g)
        self.team_groups.setdefault(state.job.team, set()).add(g)
        state.groups.append(g)
        self.alloc_cpu[node] += count * cpu
        self.alloc_mem[node] += count * mem
        if self.quotas is not None:
            self.quotas.charge(state.job.team, count * cpu, count * mem)
        if is_am:
            self.am_cpu[node] += cpu
            self.am_mem[node] += mem
        else:
            state.pending -= count
            state.running += count
            if state.pending == 0:
                self.to_check.add(j)
            duration_steps = max(1, math.ceil(state.job.duration_s / self.scenario.step_s))
            self.ends.setdefault(step + duration_steps, []).append(g)
        self.result.offline_containers += count
        self.waits.add(now_s - self.offset_s - state.job.arrival_s, count)
        return g

    def _release(self, g: int, count: int) -> None:
        node = self.g_node[g]
        self.g_count[g] -= count
        if self.g_read[g]:
            self.net_used[node] -= self.g_read[g] * count
            pair = self.g_pair[g]
            if pair is not None:
                self.link_reads[pair] -= self.g_read[g] * count
        if self.g_res[g] >= self.r_base:
            self._hold(self.g_res[g], -count)  # its slots are free again for the same class, until the next plan
        if self.g_count[g] == 0:
            self.team_groups[self.jobs[self.g_job[g]].job.team].discard(g)
        self.alloc_cpu[node] -= count * self.g_cpu[g]
        self.alloc_mem[node] -= count * self.g_mem[g]
        if self.quotas is not None:
            self.quotas.charge(self.jobs[self.g_job[g]].job.team, -count * self.g_cpu[g], -count * self.g_mem[g])
        if self.g_am[g]:
            self.am_cpu[node] -= count * self.g_cpu[g]
            self.am_mem[node] -= count * self.g_mem[g]

    def _kill(self, g: int, count: int, reclaim: bool = False) -> None:
        """Kill ``count`` containers of placement ``g``: by the guard, or evicted by quota reclaim."""
        count = min(count, self.g_count[g])
        if count <= 0:
            return
        j = self.g_job[g]
        state = self.jobs[j]
        self._release(g, count)
        if reclaim:
            self.result.reclaimed_containers += count
        else:
            self.result.killed_containers += count
        if not self.g_am[g]:
            state.running -= count
            state.pending += count  # the AM asks for the lost containers again
            if j not in self.in_started:
                self.in_started.add(j)
                self.started.append(j, state.key)
            return
        # An AM's death restarts its job: its running workers die with it and go back to the queue.
        if not reclaim:
            self.result.killed_ams += 1
        state.am_group = -1
        self.to_check.add(j)
        for other in state.groups:
            if not self.g_am[other] and self.g_count[other] > 0:
                lost = self.g_count[other]
                self._release(other, lost)
                state.running -= lost
                state.pending += lost
                if reclaim:
                    self.result.reclaimed_containers += lost
                else:
                    self.result.killed_containers += lost
        self.in_started.discard(j)
        self._enqueue(j)

    def _enqueue(self, j: int) -> None:
        """Job ``j`` (its AM not running) joins the back of the queue; its demand counts for its team."""
        state = self.jobs[j]
        job = state.job
        am = self.scenario.am_shape
        demand = (state.pending * job.cpu_milli + am.cpu_milli, state.pending * job.memory_mib + am.memory_mib)
        self.queued_demand[j] = demand
        cpu, mem = self.queued_by_team.get(job.team, (0, 0))
        self.queued_by_team[job.team] = (cpu + demand[0], mem + demand[1])
        self.waiting.append(j, state.key)

    def _dequeue(self, jobs: list[int]) -> None:
        """Jobs whose AM started leave the queue, and their demand as they queued it leaves their team's sum."""
        self.waiting.remove(jobs)
        for j in jobs:
            cpu, mem = self.queued_demand.pop(j)
            team = self.jobs[j].job.team
            total_cpu, total_mem = self.queued_by_team[team]
            self.queued_by_team[team] = (total_cpu - cpu, total_mem - mem)

    def close(self, end_s: float) -> PolicyResult:
        for j in itertools.chain(self.waiting, self.started):
            state = self.jobs[j]
            if state.pending:
                self.waits.add(end_s - self.offset_s - state.job.arrival_s, state.pending)
        self.result.offline_wait_p95_s = self.waits.quantile(0.95)
        if self.builder is not None:
            self.result.planner = self.plan_stats.summary()
            self.result.links = self.link_stats.summary()
            self.result.link_series = self.link_stats.series()
        if self.quotas is not None:
            self.result.teams = self.quotas.summary(self.quotas.interval_s / 3600)
            self.result.team_series = {"t_s": self.quotas.series_t_s,
                                       **{team: vars(s) for team, s in self.quotas.series.items()}}
        return self.result


ProgressHook = Callable[[int, int], None]


def simulate(scenario: Scenario, inventory: Inventory, online: OnlineUsage, jobs: list[Job],
             forecast: ForecastConfig | None = None, progress: ProgressHook | None = None,
             workers: int = 1) -> list[PolicyResult]:
    """Run every policy of the scenario on the same inputs; returns their results in the scenario's order.

    Policies never interact, so with ``workers > 1`` each runs in its own forked process (the inputs are shared
    copy-on-write, not pickled); the results are the same as with one worker.
    """
    config = forecast or ForecastConfig(
        cpu_threshold=scenario.safe_limit.cpu,
        memory_threshold=scenario.safe_limit.memory,
        offline_cpu_usage=scenario.offline_cpu_usage,
    )
    names: list[str] = list(scenario.policies)
    total = scenario.warmup_steps + scenario.steps
    if workers <= 1 or len(names) == 1:
        return _run_policies(scenario, inventory, online, jobs, config, names, progress)
    global _FORKED
    _FORKED = (scenario, inventory, online, jobs, config)
    context = multiprocessing.get_context("fork")
    done = context.Array("q", len(names), lock=False)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_share_progress, initargs=(done,)) as pool:
            # The planning policy is by far the longest: started first, it runs alongside all the others.
            order = sorted(range(len(names)), key=lambda i: names[i] != "broker")
            submitted = {i: pool.submit(_run_one, i, names[i]) for i in order}
            futures = [submitted[i] for i in range(len(names))]
            while not all(f.done() for f in futures):
                if progress is not None:
                    progress(sum(done) // len(names), total)
                time.sleep(0.2)
            results = [f.result() for f in futures]
    finally:
        _FORKED = None
    if progress is not None:
        progress(total, total)
    return results


_FORKED: tuple[Scenario, Inventory, OnlineUsage, list[Job], ForecastConfig] | None = None
"""The inputs a forked worker reads (set only while ``simulate`` runs with workers)."""
_DONE: Any = None


def _share_progress(done: Any) -> None:
    global _DONE
    _DONE = done


def _run_one(index: int, name: str) -> PolicyResult:
    assert _FORKED is not None, "workers are forked by simulate()"
    scenario, inventory, online, jobs, config = _FORKED

    def hook(t: int, total: int) -> None:
        _DONE[index] = t

    return _run_policies(scenario, inventory, online, jobs, config, [name], hook)[0]


def _run_policies(scenario: Scenario, inventory: Inventory, online: OnlineUsage, jobs: list[Job],
                  config: ForecastConfig, names: list[str], progress: ProgressHook | None) -> list[PolicyResult]:
    """The simulation loop for ``names``, in lockstep (see the module docstring)."""
    fleet = Fleet.of(inventory.nodes)
    runs = [PolicyRun(name, scenario, inventory, fleet, config) for name in names]
    history = UsageHistory(len(fleet))
    step_s = scenario.step_s
    warm = scenario.warmup_steps
    total = warm + scenario.steps
    series_every = max(1, SERIES_EVERY_S // step_s)
    site_index = _site_index(inventory)
    next_job = 0
    cap_cpu = fleet.cpu_milli.astype(np.float64)
    cap_mem = fleet.memory_mib.astype(np.float64)
    reserve_cpu = fleet.reserved_cpu_milli
    for t in range(total):
        if progress is not None and t % 100 == 0:
            progress(t, total)
        now_s = t * step_s
        online_cpu = online.cpu[t] * cap_cpu
        online_mem = online.memory[t] * cap_mem
        history.observe(now_s, online_cpu.astype(np.int64), online_mem.astype(np.int64), online.seen[t])
        if t < warm:
            continue  # warm-up: history only
        arrivals: list[Job] = []
        offset = (t - warm + 1) * step_s
        while next_job < len(jobs) and jobs[next_job].arrival_s < offset:
            arrivals.append(jobs[next_job])
            next_job += 1
        oracle = np.maximum(cap_cpu * scenario.safe_limit.cpu - online_cpu - reserve_cpu, 0.0)
        for run in runs:
            run.finish(t)
            run.guard(now_s, online_cpu, online_mem)
            lendable = run.publish(history, now_s)
            run.share(now_s, lendable)
            run.arrive(arrivals)
            run.plan(now_s, lendable)
            run.fill(t, now_s, lendable)
            run.place(t, now_s, lendable)
            run.result.add_lending(lendable, oracle, step_s)
            if run.planning:
                run.link_stats.add(run.link_reads)
            if (t - warm) % series_every == 0:
                run.result.add_series(now_s - warm * step_s, online_cpu + run.alloc_cpu * run.u, cap_cpu, site_index)
                if run.planning:
                    run.link_stats.sample(now_s - warm * step_s, run.link_reads)
    if progress is not None:
        progress(total, total)
    return [run.close(total * step_s) for run in runs]


def _pass(passed: dict[tuple[ClassKey, bool], int], key: tuple[ClassKey, bool], index: int) -> None:
    """Reservation ``index`` of class ``key`` is of no use for the rest of a ``fill``: the class's front of such
    reservations grows when it is the next one."""
    if passed.get(key, 0) == index:
        passed[key] = index + 1


def _site_index(inventory: Inventory) -> dict[str, np.ndarray]:
    sites: dict[str, list[int]] = {}
    for i, node in enumerate(inventory.nodes):
        sites.setdefault(node.site, []).append(i)
    return {site: np.array(index, dtype=np.int64) for site, index in sites.items()}


__all__ = ["PolicyRun", "simulate"]
