"""The control loop: collect -> estimate -> quota -> plan -> publish -> push, every interval, on the leader only;
and the fast path that shrinks a node the moment its agent reports online usage over the safe limit.

Rules the loop keeps (DESIGN.md's "a plan is published only when complete"):

- **Each step is timed and guarded.** A step that raises ends the cycle: nothing of it is published, the last
  plan stays in force (the extender and the peers keep enforcing it), the failure is counted by step, and the
  next cycle starts over. A loop never dies of a step's failure.
- **Publish, then push.** A plan is stored (fenced by the leader's token when the store is shared: a deposed
  leader's late plan is refused) before any peer hears of it, so that every replica's extender and every peer
  converge on the same version.
- **Push to every sink at once, each bounded by ``sinks.timeout_s``.** A failing or hanging peer costs its own
  push, never the other sinks' or the next cycle's; it converges when it is back, because sinks re-send what they
  could not confirm. The quota status (``sinks.quota_status``: the cycle's runtime quota on the policy object)
  is written beside them, the same way, after each cycle's plan (not the fast path's).
- **Act only while the lease is valid.** Before pushing, the leader checks that its lease has not run out; peers
  without fencing (YARN, Kubernetes node status) then hear from at most one leader at a time.
- **Fast path.** A node over its safe limit is queued; one worker drains the queue, derives a plan with those
  nodes shrunk (``broker.capacity.shrink``), publishes it as the next version and pushes only those nodes, with
  the victims the kill score chose. Nodes that go over while a shrink is in flight go in the next batch, so a
  storm of samples costs one plan per batch, not one per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from broker.capacity import Fleet, ForecastConfig, Published, UsageHistory
from broker.capacity.shrink import ShrinkConfig
from broker.errors import BrokerError, ConflictError, PeerError
from broker.model import Demand, NodePlan, Plan, Resources, total
from broker.quota import QuotaPolicy, RuntimeQuota
from broker.scheduler import QuotaDocument
from broker.service.control.config import ServiceConfig
from broker.service.control.cycle import Estimate, estimate, leaf_demand, make_plan, quota_document
from broker.service.control.leader import Elector
from broker.service.control.plans import PlanBoard
from broker.service.control.quota_status import QuotaStatusSink
from broker.service.control.sources import Usage, World
from broker.service.observability.metrics import LoopStep, PushFailure, PushPath, ServiceMetrics
from broker.service.sinks.base import CapacitySink, Eviction, SinkReport
from broker.store.records import Fence, Observation

log = logging.getLogger(__name__)

T = TypeVar("T")

class PlanStore(Protocol):
    """Where the leader stores each plan and reads the policy (the Redis store, or the in-process one)."""

    def put_plan(self, plan_json: str, version: int, fence: Fence | None = None) -> None: ...

    def policy(self) -> QuotaPolicy | None: ...

    def save_observation(self, observation: Observation) -> None: ...


class NotLeading(BrokerError):
    """This replica may not publish: it does not hold a valid lease."""


class StepFailed(Exception):
    """A step raised; the cycle ends without publishing (the cause is chained)."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


@dataclass
class NodeShrink:
    """The fast path's decision for one node: its new offline capacity per sink and the victims."""

    node: str
    yarn: Resources
    kubernetes: Resources
    evictions: tuple[Eviction, ...] = ()
    sampled_at_s: float = 0.0


@dataclass
class CycleOutcome:
    """What one cycle did (for tests and logs)."""

    plan: Plan | None = None
    failed_step: str | None = None
    pushes: list[SinkReport] = field(default_factory=list)
    quota: RuntimeQuota | None = None


class ControlLoop:
    """See the module docstring. Build it, then ``await run(stop)``; it returns when ``stop`` is set."""

    def __init__(self, config: ServiceConfig, world: World, store: PlanStore, board: PlanBoard, elector: Elector,
                 sinks: Sequence[CapacitySink], metrics: ServiceMetrics, *, fenced_store: bool,
                 quota_status: QuotaStatusSink | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.world = world
        self.store = store
        self.board = board
        self.elector = elector
        self.sinks = list(sinks)
        self.quota_status = quota_status
        self.metrics = metrics
        self.fenced_store = fenced_store
        self.clock = clock
        self.monotonic = monotonic
        inventory = world.inventory
        self.fleet = Fleet.of(inventory.nodes)
        self.forecast = ForecastConfig(cpu_threshold=config.fast_path.cpu_fraction,
                                       memory_threshold=config.fast_path.memory_fraction)
        self.shrink_config = ShrinkConfig.from_forecast(self.forecast)
        self._capacity = {node.name: node.capacity for node in inventory.nodes}
        self.history = UsageHistory(len(inventory.nodes))
        self.world.backfill(self.history, clock())
        self.published: Published | None = None
        self.policy: QuotaPolicy | None = None
        self.fence: Fence | None = None
        self.cycles = 0
        self._site_of = {node.name: node.site for node in inventory.nodes}
        self._pending: dict[str, NodeShrink] = {}
        self._wake_shrinks = asyncio.Event()
        self._publish_lock = asyncio.Lock()

    # --- leadership ------------------------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.fence is not None and self.monotonic() < self.elector.valid_until()

    async def campaign(self) -> None:
        """One round of the election; leadership changes are logged and exported."""
        was = self.fence is not None
        self.fence = await self.elector.campaign()
        if was != (self.fence is not None):
            log.info("leadership %s", "taken" if self.fence else "lost",
                     extra={"fence": self.fence.token if self.fence else None})
        self.metrics.leadership(self.config.replica, self.fence is not None)

    # --- one cycle -------------------------------------------------------------------------------------------

    async def _step(self, step: LoopStep, work: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await work()
        except Exception as exc:
            self.metrics.step_finished(step, time.perf_counter() - started, False)
            log.warning("step %s failed, keeping plan v%d: %s", step.value, self.board.version, exc,
                        extra={"step": step.value, "cycle": self.cycles})
            raise StepFailed(step.value) from exc
        self.metrics.step_finished(step, time.perf_counter() - started, True)
        return result

    async def cycle(self) -> CycleOutcome:
        """Collect, estimate, quota, plan, publish, push (see the module docstring)."""
        self.cycles += 1
        now_s = self.clock()
        try:
            usage, demand = await self._step(LoopStep.COLLECT, lambda: self._collect(now_s))
            found = await self._step(LoopStep.ESTIMATE, lambda: asyncio.to_thread(self._estimate, usage, now_s))
            quota = await self._step(LoopStep.QUOTA, lambda: self._quota(found, demand))
            plan = await self._step(LoopStep.PLAN, lambda: asyncio.to_thread(
                make_plan, self.world.inventory, demand, quota[0], found.lendable, self.policy,
                version=0, now_s=now_s, interval_s=self.config.interval_s,
                time_limit_s=self.config.planner.time_limit_s, seed=self.config.planner.seed))
            plan = await self._step(LoopStep.PUBLISH, lambda: self._publish(plan))
        except StepFailed as failed:
            self.metrics.cycle_finished(False)
            return CycleOutcome(failed_step=failed.step)
        self.metrics.planner_solved(plan.solve)
        self.metrics.plan_published(plan)
        if quota[1] is not None:
            self.metrics.team_quota(quota[1], {team.team: team.placed for team in plan.teams})
        pushes = await self._push(plan, PushPath.LOOP, lambda sink: sink.push(plan), quota[1])
        self.metrics.cycle_finished(all(report.ok for report in pushes))
        return CycleOutcome(plan, None, pushes, quota[1])

    async def _collect(self, now_s: float) -> tuple[Usage, Demand]:
        """The policy, usage and demand. The policy is read first and once per cycle: its team bindings map the
        work read from the outside (apps in YARN queues) to teams, and the quota step uses the same policy."""
        await self._read_policy()
        usage = await asyncio.to_thread(self.world.usage, now_s)
        demand = await self.world.demand(now_s, self.policy.bindings() if self.policy is not None else {})
        self.history.observe(now_s, usage.cpu_milli, usage.memory_mib, usage.seen)
        return usage, demand

    async def _read_policy(self) -> None:
        """The stored policy; while the store is down, the last one read (none read yet: the step fails)."""
        try:
            self.policy = await asyncio.to_thread(self.store.policy)
        except PeerError as exc:
            self.metrics.store_error("policy")
            if self.policy is None:
                raise
            log.warning("policy not read, using the last one read: %s", exc)

    def _estimate(self, usage: Usage, now_s: float) -> Estimate:
        found = estimate(self.world.inventory, self.fleet, self.history, now_s, self.forecast, self.published)
        self.published = found.published
        return found

    async def _quota(self, found: Estimate, demand: Demand) -> tuple[QuotaDocument, RuntimeQuota | None]:
        """The runtime quota of the policy ``_collect`` read this cycle."""
        document, runtime, strangers = quota_document(self.policy, found.pool, demand)
        if strangers:
            log.warning("demand of teams outside the quota policy gets nothing: %s", ", ".join(strangers))
        if self.policy is not None:  # what `broker quota apply --dry-run` previews a change against
            wanted = leaf_demand(self.policy, demand)[0]
            observation = Observation(observed_at=datetime.now(UTC), pool=found.pool, demand=wanted)
            with contextlib.suppress(PeerError):
                await asyncio.to_thread(self.store.save_observation, observation)
        return document, runtime

    async def _publish(self, plan: Plan) -> Plan:
        """Store the plan as the next version (fenced), then put it on the board. A version conflict (another
        replica stored a newer plan: leadership moved) is a failure of this cycle, not a retry."""
        async with self._publish_lock:
            return await self._store(plan)

    async def _store(self, plan: Plan) -> Plan:
        if not self.leading:
            raise NotLeading("the lease was lost or ran out")
        stamped = plan.model_copy(update={"version": self.board.version + 1})
        fence = self.fence if self.fenced_store else None
        text = await asyncio.to_thread(stamped.model_dump_json)
        with self.board.storing(stamped.version):
            try:
                await asyncio.to_thread(self.store.put_plan, text, stamped.version, fence)
            except PeerError:
                self.metrics.store_error("put_plan")
                raise
            except ConflictError:
                self.fence = None
                raise
            self.board.put(stamped)
        return stamped

    async def _push(self, plan: Plan, path: PushPath, call: Callable[[CapacitySink], Awaitable[SinkReport]],
                    quota: RuntimeQuota | None = None) -> list[SinkReport]:
        """Push to every sink at once and, given the cycle's ``quota``, write it to the quota status sink."""
        writes: list[tuple[str, Callable[[], Awaitable[SinkReport]]]] = [
            (sink.name, functools.partial(call, sink)) for sink in self.sinks]
        status = self.quota_status
        if status is not None and quota is not None:
            writes.append((status.name, functools.partial(status.push, quota, plan)))
        if not writes:
            return []
        started = time.perf_counter()
        if not self.leading:
            log.warning("not pushing plan v%d: the lease ran out", plan.version)
            return []
        reports = await asyncio.gather(*(self._bounded(name, path, write) for name, write in writes))
        ok = all(report.ok for report in reports)
        self.metrics.step_finished(LoopStep.PUSH, time.perf_counter() - started, ok)
        return list(reports)

    async def _bounded(self, name: str, path: PushPath, write: Callable[[], Awaitable[SinkReport]]) -> SinkReport:
        started = time.perf_counter()
        timeout = self.config.sinks.timeout_s
        try:
            report = await asyncio.wait_for(write(), timeout)
        except TimeoutError:
            self.metrics.push_failed(name, PushFailure.TIMEOUT, time.perf_counter() - started, path)
            report = SinkReport(sink=name, ok=False, seconds=time.perf_counter() - started,
                                error=f"no answer within {timeout:g} s (sinks.timeout_s)")
        except Exception as exc:  # a sink's own bug must not stop the other sinks or the loop
            log.exception("sink %s raised", name)
            self.metrics.push_failed(name, PushFailure.CRASH, time.perf_counter() - started, path)
            report = SinkReport(sink=name, ok=False, seconds=time.perf_counter() - started,
                                error=f"{type(exc).__name__}: {exc}")
        else:
            if path is PushPath.LOOP:
                self.metrics.push_finished(report, path)
        if not report.ok:
            log.warning("push to %s failed: %s", name, report.error, extra={"sink": name})
        return report

    def _by_site(self, amounts: dict[str, Resources]) -> dict[str, Resources]:
        sites: dict[str, list[Resources]] = {}
        for node, amount in amounts.items():
            sites.setdefault(self._site_of[node], []).append(amount)
        return {site: total(values) for site, values in sites.items()}

    # --- fast path -------------------------------------------------------------------------------------------

    def capacity_of(self, node: str) -> Resources | None:
        """The node's capacity as the inventory knows it (``None``: a node outside the inventory)."""
        return self._capacity.get(node)

    def request_shrink(self, decision: NodeShrink) -> None:
        """Queue a node's shrink (the newest decision for a node wins) and wake the shrink worker."""
        if not self.leading or not self.config.fast_path.enabled:
            return
        self._pending[decision.node] = decision
        self._wake_shrinks.set()

    async def shrink_pending(self) -> list[SinkReport]:
        """Apply every queued shrink as one new plan version and push those nodes only."""
        batch, self._pending = self._pending, {}
        plan = self.board.plan
        if not batch or plan is None:
            return []
        nodes = {n.node: n for n in plan.nodes}
        changed: list[NodePlan] = []
        for decision in batch.values():
            current = nodes.get(decision.node)
            if current is None:
                continue
            yarn = current.yarn.min(decision.yarn)
            kubernetes = current.kubernetes.min(decision.kubernetes)
            if yarn != current.yarn or kubernetes != current.kubernetes or decision.evictions:
                nodes[decision.node] = current.model_copy(update={"yarn": yarn, "kubernetes": kubernetes})
                changed.append(nodes[decision.node])
        if not changed:
            return []
        shrunk = plan.model_copy(update={"nodes": tuple(nodes[n.node] for n in plan.nodes),
                                         "created_at_s": self.clock()})
        self.metrics.shrink_started(len(changed))
        try:
            published = await self._step(LoopStep.PUBLISH, lambda: self._publish(shrunk))
        except StepFailed:
            self._requeue(batch)
            return []
        names: Collection[str] = frozenset(n.node for n in changed)
        evictions = tuple(e for d in batch.values() for e in d.evictions)
        reports = await self._push(published, PushPath.FAST, lambda sink: sink.shrink(published, names, evictions))
        oldest = min(d.sampled_at_s for d in batch.values())
        for report in reports:
            self.metrics.shrink_finished(report, max(self.clock() - oldest, 0.0))
        log.info("fast path: shrank %d node(s) in plan v%d", len(names), published.version)
        return reports

    def _requeue(self, batch: dict[str, NodeShrink]) -> None:
        for node, decision in batch.items():
            self._pending.setdefault(node, decision)

    async def _shrink_worker(self) -> None:
        while True:
            await self._wake_shrinks.wait()
            self._wake_shrinks.clear()
            await self.shrink_pending()
            if self._pending:
                await asyncio.sleep(0.05)  # the store failed: retry shortly, not in a busy loop
                self._wake_shrinks.set()

    # --- running ---------------------------------------------------------------------------------------------

    async def _elect_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.campaign()
            except Exception:  # an elector's bug must not end the replica: it follows until the next round
                log.exception("election round failed")
                self.fence = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.leader.renew_s)

    async def _cycle_forever(self, stop: asyncio.Event) -> None:
        next_at = self.monotonic()
        while not stop.is_set():
            if self.leading:
                outcome = await self.cycle()
                if outcome.failed_step is None and outcome.plan is not None:
                    log.info("cycle %d published plan v%d", self.cycles, outcome.plan.version,
                             extra={"cycle": self.cycles, "plan_version": outcome.plan.version})
            next_at = max(next_at + self.config.interval_s, self.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(next_at - self.monotonic(), 0.0))

    async def run(self, stop: asyncio.Event) -> None:
        """Elect, cycle and shrink until ``stop`` is set; then resign the lease and close the sinks."""
        await self.campaign()
        tasks = [asyncio.create_task(self._elect_forever(stop)), asyncio.create_task(self._cycle_forever(stop)),
                 asyncio.create_task(self._shrink_worker())]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.elector.resign()
            self.fence = None
            self.metrics.leadership(self.config.replica, False)
            closing: list[CapacitySink | QuotaStatusSink] = [*self.sinks]
            if self.quota_status is not None:
                closing.append(self.quota_status)
            for sink in closing:
                with contextlib.suppress(Exception):
                    await sink.close()


__all__ = ["ControlLoop", "CycleOutcome", "NodeShrink", "NotLeading", "PlanStore", "StepFailed"]
