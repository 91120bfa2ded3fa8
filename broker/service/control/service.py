"""One broker replica, assembled from its configuration: store, world, elector, sinks, loop, agent hub, HTTP.

``build`` turns a validated ``ServiceConfig`` into a ``Replica`` (every file read, every address parsed, so that a
bad configuration fails before anything starts); ``Replica.run`` serves until asked to stop:

- the HTTP server: ``/healthz``, ``/readyz``, ``/metrics`` (the service's and the extender's metrics, one
  registry), the kube-scheduler extender under ``extender.url_prefix`` and, with ``http.admin_tokens``, the quota
  admin API under ``/admin``;
- the control loop (elections on every replica; cycles and the fast path on the leader);
- the store feed: newer plans in the store reach this replica's extender (followers) within ``poll_s``;
- the agent hub, when ``agents.listen`` is set: samples feed the usage source and the fast path;
- the policy source, with ``policy_source.kind: kubernetes``: every replica follows the ``ElasticQuotaPolicy``,
  the leader applies it to the store (``policy_source``), and the admin API refuses policy writes meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import uvicorn
from kubernetes.client import ApiClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from broker.errors import InputError
from broker.model import Inventory, NodePlan, Resources, load, total
from broker.quota import QuotaPolicy
from broker.service.admin_api import PolicyOwner, Tokens
from broker.service.admin_api import create_app as admin_app
from broker.service.agents.fastpath import evictions_of, shrink_for
from broker.service.agents.hub import AgentHub, ServerTls
from broker.service.control.config import LeaderKind, PolicySourceKind, ServiceConfig, UsageKind
from broker.service.control.kubernetes_demand import KubernetesDemandSource
from broker.service.control.leader import Elector, KubernetesElector, RedisElector, SoloElector
from broker.service.control.loop import ControlLoop, NodeShrink
from broker.service.control.plans import BoardPlanSource, PlanBoard, StoreFeed
from broker.service.control.policy_source import PolicySource
from broker.service.control.quota_status import QuotaStatusSink
from broker.service.control.sources import (
    AgentUsage,
    DemandFile,
    DemandSource,
    DemandSources,
    LiveWorld,
    SimulatedWorld,
    World,
)
from broker.service.control.storage import LocalPlans, PlanKeeper, ServiceStore
from broker.service.control.yarn_demand import YarnDemandSource
from broker.service.extender import (
    Conventions,
    Extender,
    ExtenderConfig,
    StalePolicy,
    TlsFiles,
    create_app,
    follow_plans,
    uvicorn_config,
)
from broker.service.observability.metrics import ServiceMetrics
from broker.service.sinks import CapacitySink, kubernetes_sinks, yarn_sinks
from broker.store.memory import MemoryStore
from broker.store.policy_log import PolicyLog
from broker.store.redis_store import RedisStore
from broker.yarn_bridge import load_config as load_yarn_config
from plugins.kubernetes import LeaseElector, QuotaStatusWriter, api_client, api_clients, load_clusters
from plugins.node_agent.client import read_token
from plugins.node_agent.wire import NOT_LEADER, NodeSample
from plugins.sim.scenario import builtin_scenario, load_scenario

log = logging.getLogger(__name__)


@dataclass
class Replica:
    """A built replica (see the module docstring)."""

    config: ServiceConfig
    metrics: ServiceMetrics
    store: ServiceStore
    board: PlanBoard
    loop: ControlLoop
    extender: Extender
    app: Starlette
    feed: StoreFeed
    hub: AgentHub | None = None
    yarn_demand: YarnDemandSource | None = None
    policy_source: PolicySource | None = None
    kubernetes_demand: KubernetesDemandSource | None = None
    server: uvicorn.Server | None = None
    _plan_nodes: tuple[int, dict[str, NodePlan]] = field(default=(0, {}))

    async def on_sample(self, sample: NodeSample, received_at_s: float) -> None:
        """The fast path's entry: a node over its safe limit is queued for a shrink (leader only)."""
        self.metrics.agent_samples((received_at_s - sample.sampled_at_s,))
        plan = self.board.plan
        if plan is None or not self.loop.leading:
            return
        if self._plan_nodes[0] != plan.version:
            self._plan_nodes = (plan.version, {n.node: n for n in plan.nodes})
        node = self._plan_nodes[1].get(sample.node)
        if node is None:
            return
        decision = shrink_for(sample, node, self.loop.capacity_of(sample.node), self.loop.shrink_config)
        if decision.over and (decision.yarn != node.yarn or decision.kubernetes != node.kubernetes
                              or decision.victims):
            self.loop.request_shrink(NodeShrink(sample.node, decision.yarn, decision.kubernetes,
                                                tuple(evictions_of(sample.node, decision)), sample.sampled_at_s))

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None, *, own_process: bool = False) -> None:
        """Serve until ``stop`` is set (``ready`` is set once every listener is bound). ``own_process``: the
        replica owns the interpreter (``broker serve``), so it may tune the garbage collector and the GIL's
        switching for itself."""
        if own_process:
            tune_garbage_collection()
            tune_thread_switching()
        http = self.config.http
        tls = TlsFiles(http.tls_cert, http.tls_key, http.tls_client_ca) if http.tls_cert and http.tls_key else None
        settings = uvicorn_config(self.app, http.host, http.port, tls, self.config.log.level)
        settings.log_config, settings.lifespan = None, "off"  # the service's own logging; no lifespan to run
        server = self.server = uvicorn.Server(settings)
        tasks = [asyncio.create_task(self.feed.run()), asyncio.create_task(follow_plans(self.extender,
                                                                                        BoardPlanSource(self.board)))]
        if self.hub is not None:
            await self.hub.start()
            tasks.append(asyncio.create_task(self._report_agents(stop)))
        if self.policy_source is not None:
            tasks.append(asyncio.create_task(self.policy_source.run(stop)))
        serving = asyncio.create_task(server.serve())
        loop = asyncio.create_task(self.loop.run(stop))
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if serving.done():
            loop.cancel()
            serving.result()
            raise InputError("http.port", f"cannot serve on {http.host}:{http.port}")
        if ready is not None:
            ready.set()
        try:
            await loop
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving
            if self.hub is not None:
                await self.hub.stop()
            if self.yarn_demand is not None:
                await self.yarn_demand.aclose()
            if self.kubernetes_demand is not None:
                await self.kubernetes_demand.aclose()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def http_port(self) -> int:
        """The port the HTTP server listens on (the one bound, when ``http.port`` was 0)."""
        if self.server is not None and self.server.servers:
            port: int = self.server.servers[0].sockets[0].getsockname()[1]
            return port
        return self.config.http.port

    async def _report_agents(self, stop: asyncio.Event) -> None:
        """Every 5 s: agents connected against the inventory, the largest lag, and the offline usage the agents
        see, per site (what offline work really uses, beside what the plan lent it)."""
        assert self.hub is not None
        inventory = self.loop.world.inventory
        site_of = {node.name: node.site for node in inventory.nodes}
        while not stop.is_set():
            lags = self.hub.lag()
            self.metrics.agents_seen(len(lags), len(inventory.nodes),
                                     max((lag.age_s for lag in lags.values()), default=0.0))
            used: dict[str, list[Resources]] = {}
            for node, sample in self.hub.latest().items():
                site = site_of.get(node)
                if site is not None:
                    used.setdefault(site, []).extend(
                        Resources.exact(c.cpu_milli, c.memory_mib) for c in sample.offline)
            self.metrics.offline_used({site: total(amounts) for site, amounts in used.items()})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)

    # --- HTTP --------------------------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready when the extender has a plan that is not stale; the answer says the role and the plan's age."""
        problem = self.extender.plan_problem()
        plan = self.board.plan
        body: dict[str, object] = {
            "replica": self.config.replica,
            "leading": self.loop.leading,
            "lease_token": self.loop.fence.token if self.loop.fence is not None else None,
            "plan_version": plan.version if plan else None,
            "plan_age_s": round(time.time() - plan.created_at_s, 3) if plan else None,
            "store_readable": self.feed.healthy,
        }
        # a cluster's demand missing degrades the plans, not the extender's answers
        for key, reader in (("yarn_demand", self.yarn_demand), ("kubernetes_demand", self.kubernetes_demand)):
            if reader is not None:
                body[key] = {name: {"state": status.state.value, "age_s": status.age_s, "error": status.error}
                             for name, status in reader.status().items()}
        if problem:
            body["problem"] = problem
        return not problem and plan is not None, body


GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds in a replica (CPython's default: 700, 10, 10).

Each cycle builds and drops a plan of some 100,000 objects (a 5,000-node plan), and with the default thresholds
that triggers a full collection about twice a second; a full collection walks every live object (430,000 in a
5,000-node replica) and holds the event loop 100-130 ms, which is the extender's whole latency tail. Nearly all
of it is freed by reference counting (pydantic models form no cycles), so collecting 70 times less often costs
little memory and turns the pauses from twice a second into about once a minute (docs/benchmarks/service.md)."""


def tune_garbage_collection() -> None:
    """Collect what start-up built, move it out of the collector's sight (``gc.freeze``: it lives as long as
    the process), and collect the rest less often (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


SWITCH_INTERVAL_S = 0.001
"""How long a thread may keep the GIL while another waits for it, in a replica (CPython's default: 5 ms).

The control loop's steps (estimate, plan, tables: some 0.3 s of CPU a second at 5,000 nodes) run in threads,
and the event loop lets the GIL go in every socket call it makes. With the default, each of those calls then
waits up to 5 ms for the GIL to come back while the planner runs: a convoy that held the extender to some 200
answers a second during each cycle, and to 635 of 1,000 req/s overall on a 2-core machine. At 1 ms the event
loop keeps up (docs/benchmarks/service.md); the planner pays a few more switches."""


def tune_thread_switching() -> None:
    """Hand the GIL over after ``SWITCH_INTERVAL_S`` (see there)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _http_app(replica: Replica, extender_asgi: Starlette, admin: Starlette | None) -> Starlette:
    async def healthz(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    async def readyz(request: Request) -> Response:
        ready, body = replica.readiness()
        return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")

    async def metrics(request: Request) -> Response:
        body, content_type = replica.metrics.exposition()
        return Response(body, media_type=content_type)

    routes: list[Route | Mount] = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    if replica.config.extender.enabled:
        routes.append(Mount(replica.config.extender.url_prefix or "/", app=extender_asgi))
    if admin is not None:
        routes.append(Mount("/admin", app=admin))
    return Starlette(routes=routes)


# --- building ----------------------------------------------------------------------------------------------


def _world(config: ServiceConfig, hub: AgentHub | None, read_demand: DemandSource | None) -> World:
    fleet = config.fleet
    if fleet.usage is UsageKind.SIMULATED:
        name = fleet.scenario
        scenario, base = (load_scenario(Path(name)) if name.endswith((".yaml", ".yml", ".json"))
                          else (builtin_scenario(name), None))
        return SimulatedWorld(scenario, base, time.time(), fleet.speed, fleet.replay_from_h * 3600)
    assert fleet.inventory is not None and hub is not None  # validated: a real fleet has agents
    inventory = load(Inventory, fleet.inventory)
    demand = read_demand
    if demand is None:
        assert config.demand.file is not None  # validated: a real fleet's demand is a file or read from clusters
        demand = DemandFile(config.demand.file)
    return LiveWorld(inventory, AgentUsage(inventory, hub.latest, stale_s=max(3 * config.interval_s, 15.0)), demand)


def _yarn_demand(config: ServiceConfig, metrics: ServiceMetrics) -> YarnDemandSource | None:
    """With ``demand.kind: yarn`` or ``yarn+kubernetes``, a reader of every RM of the cluster file
    (``demand.yarn``, else ``sinks.yarn``); the file is read and checked here, before anything starts."""
    if not config.demand.kind.reads_yarn:
        return None
    path = config.demand_yarn_file
    assert path is not None  # validated
    return YarnDemandSource.from_config(load_yarn_config(path), metrics, timeout_s=config.demand.timeout_s,
                                        max_age_s=config.demand_max_age_s)


def _kubernetes_demand(config: ServiceConfig, metrics: ServiceMetrics) -> KubernetesDemandSource | None:
    """With ``demand.kind: kubernetes`` or ``yarn+kubernetes``, a pod watch per cluster of
    ``kubernetes_clusters`` (started by the leader's first cycle); the file is read and checked here."""
    if not config.demand.kind.reads_kubernetes:
        return None
    assert config.kubernetes_clusters is not None  # validated
    return KubernetesDemandSource.from_config(load_clusters(config.kubernetes_clusters), metrics,
                                              names=Conventions.for_domain(config.extender.domain),
                                              timeout_s=config.demand.timeout_s, max_age_s=config.demand_max_age_s)


def _check_demand_clusters(names: Iterable[str], inventory: Inventory, field: str, kind: str) -> None:
    """A YARN cluster's pending work runs only on that cluster's nodes, and a Kubernetes cluster's pods on its
    own, so a cluster the inventory lacks would fail every cycle's plan: refused at start, naming it, instead."""
    known = {c.name for c in inventory.clusters}
    missing = sorted(set(names) - known)
    if missing:
        raise InputError(field, f"{kind} cluster(s) {', '.join(missing)} are not clusters of the inventory "
                         f"({', '.join(sorted(known))}): their pending work would have no nodes to run on")


def _stores(config: ServiceConfig) -> tuple[ServiceStore, RedisStore | None]:
    if config.store is None:
        memory = MemoryStore()
        return ServiceStore(memory, LocalPlans()), None
    redis = RedisStore.from_url(config.store)
    keeper: PlanKeeper = redis
    return ServiceStore(redis, keeper), redis


def _elector(config: ServiceConfig, redis: RedisStore | None) -> Elector:
    leader = config.leader
    if leader.kind is LeaderKind.NONE:
        return SoloElector()
    if leader.kind is LeaderKind.REDIS:
        assert redis is not None  # validated: redis election needs a Redis store
        return RedisElector(redis, leader.lease, config.replica, leader.ttl_s)
    assert config.kubernetes_clusters is not None and leader.cluster is not None  # validated
    clients = api_clients(load_clusters(config.kubernetes_clusters))
    if leader.cluster not in clients:
        raise InputError("leader.cluster", f"no cluster {leader.cluster!r} in {config.kubernetes_clusters}")
    from kubernetes.client import CoordinationV1Api

    elector = LeaseElector(CoordinationV1Api(clients[leader.cluster]), leader.namespace, leader.lease,
                           config.replica, peer=leader.cluster, lease_duration_s=max(int(leader.ttl_s), 1),
                           renew_deadline_s=leader.ttl_s * 0.7)
    return KubernetesElector(elector, leader.lease, leader.ttl_s, fences=redis)


def _sinks(config: ServiceConfig, inventory: Inventory, conventions: Conventions) -> list[CapacitySink]:
    sinks: list[CapacitySink] = []
    if config.sinks.yarn is not None:
        sinks.extend(yarn_sinks(load_yarn_config(config.sinks.yarn), inventory))
    if config.sinks.kubernetes:
        assert config.kubernetes_clusters is not None  # validated
        sinks.extend(kubernetes_sinks(load_clusters(config.kubernetes_clusters), conventions,
                                      request_timeout_s=config.sinks.timeout_s))
    return sinks


def _quota_status(config: ServiceConfig) -> QuotaStatusSink | None:
    """The quota status sink on the cluster ``sinks.quota_status.cluster`` names in ``kubernetes_clusters``."""
    wanted = config.sinks.quota_status
    if wanted is None:
        return None
    from kubernetes.client import CustomObjectsApi

    api = _cluster_api(config, wanted.cluster, "sinks.quota_status.cluster")
    writer = QuotaStatusWriter(CustomObjectsApi(api), f"kube-apiserver {wanted.cluster}",
                               request_timeout_s=config.sinks.timeout_s)
    return QuotaStatusSink(writer, wanted.cluster, wanted.name, api.close)


def _cluster_api(config: ServiceConfig, cluster: str, field: str) -> ApiClient:
    """The API client of ``cluster`` in ``kubernetes_clusters``; ``InputError`` on ``field`` when the file has no
    such cluster."""
    assert config.kubernetes_clusters is not None  # validated: every setting naming a cluster needs the file
    clusters = load_clusters(config.kubernetes_clusters).clusters
    found = next((i for i, known in enumerate(clusters) if known.name == cluster), None)
    if found is None:
        raise InputError(field, f"no cluster {cluster!r} in {config.kubernetes_clusters}")
    return api_client(clusters[found], f"clusters[{found}]")


def _policy_source(config: ServiceConfig, store: ServiceStore, metrics: ServiceMetrics,
                   leading: Callable[[], bool]) -> PolicySource | None:
    """With ``policy_source.kind: kubernetes``, the ``ElasticQuotaPolicy`` ``policy_source.name`` of the cluster
    ``policy_source.cluster`` names in ``kubernetes_clusters``, as the source of the store's policy."""
    wanted = config.policy_source
    if wanted.kind is not PolicySourceKind.KUBERNETES:
        return None
    assert wanted.cluster is not None  # validated
    from kubernetes.client import CustomObjectsApi

    api = _cluster_api(config, wanted.cluster, "policy_source.cluster")
    return PolicySource(CustomObjectsApi(api), PolicyOwner(wanted.cluster, wanted.name), PolicyLog(store.policies),
                        metrics, leading, tick_s=min(config.interval_s, 1.0), resync_s=wanted.resync_s,
                        timeout_s=wanted.timeout_s, close=api.close)


def _bound_by_name(policy: QuotaPolicy, inventory: Inventory) -> QuotaPolicy:
    """The simulated scenario's policy with each team bound to the namespace and YARN queue ``root.<team>`` of its
    own name in every cluster, so that the extender and the YARN sink can map work to teams."""
    clusters = [c.name for c in inventory.clusters]
    document = policy.for_storage()
    for group in document["groups"]:
        if policy.tree.is_leaf(policy.tree.index[group["name"]]):
            group["namespaces"] = {cluster: [group["name"]] for cluster in clusters}
            group["yarn_queues"] = {cluster: [f"root.{group['name']}"] for cluster in clusters}
    return QuotaPolicy.from_document(document)


def _seed_policy(config: ServiceConfig, store: ServiceStore, world: World) -> None:
    """Apply the configured policy (or the simulated scenario's) when the store has none yet."""
    if store.policies.head() != 0:
        return
    policy: QuotaPolicy | None = None
    if config.policy is not None:
        policy = QuotaPolicy.load(config.policy)
    elif isinstance(world, SimulatedWorld) and world.scenario.quota is not None:
        policy = _bound_by_name(world.scenario.quota_policy(), world.inventory)
    if policy is not None:
        PolicyLog(store.policies).apply(policy, author=f"broker serve ({config.replica})",
                                        comment="initial policy from the service configuration")


def build(config: ServiceConfig, env: Mapping[str, str]) -> Replica:
    """Everything a replica needs, built and checked (see the module docstring)."""
    metrics = ServiceMetrics()
    metrics.loop_configured(config.interval_s)
    store, redis = _stores(config)
    hub: AgentHub | None = None
    if config.agents.listen is not None:
        host, _, port = config.agents.listen.rpartition(":")
        if not host or not port.isdigit():
            raise InputError("agents.listen", f"{config.agents.listen!r} is not host:port")
        token = read_token(config.agents.token_file, "agents.token_file") if config.agents.token_file else ""
        tls = (ServerTls(config.agents.tls_cert, config.agents.tls_key, config.agents.tls_client_ca)
               if config.agents.tls_cert and config.agents.tls_key else None)
        hub = AgentHub(token, host=host, port=int(port), tls=tls)
    yarn_demand = _yarn_demand(config, metrics)
    kubernetes_demand = _kubernetes_demand(config, metrics)
    readers = [reader for reader in (yarn_demand, kubernetes_demand) if reader is not None]
    world = _world(config, hub, DemandSources(*readers) if readers else None)
    if yarn_demand is not None:
        _check_demand_clusters(yarn_demand.status().keys(), world.inventory, "demand.yarn", "YARN")
    if kubernetes_demand is not None:
        _check_demand_clusters(kubernetes_demand.clusters, world.inventory, "kubernetes_clusters", "Kubernetes")
    _seed_policy(config, store, world)
    conventions = Conventions.for_domain(config.extender.domain)
    board = PlanBoard()
    loop = ControlLoop(config, world, store, board, _elector(config, redis),
                       _sinks(config, world.inventory, conventions), metrics,
                       fenced_store=redis is not None and config.leader.kind is not LeaderKind.NONE,
                       quota_status=_quota_status(config))
    extender = Extender(ExtenderConfig(conventions=conventions, cluster=config.extender.cluster,
                                       max_plan_age_s=config.plan_max_age_s, stale_policy=StalePolicy.CLOSED),
                        registry=metrics.registry)
    feed = StoreFeed(board, store.plan_version, store.get_plan, on_error=lambda exc: metrics.store_error("get_plan"))
    policy_source = _policy_source(config, store, metrics, lambda: loop.leading)
    admin = None
    if config.http.admin_tokens is not None:
        admin = admin_app(PolicyLog(store.policies), Tokens.load(config.http.admin_tokens),
                          owner=policy_source.owner if policy_source is not None else None)
    replica = Replica(config, metrics, store, board, loop, extender, Starlette(), feed, hub, yarn_demand,
                      policy_source=policy_source, kubernetes_demand=kubernetes_demand)
    replica.app = _http_app(replica, create_app(extender), admin)
    if hub is not None:
        hub.on_sample = replica.on_sample
        hub.refusing = lambda: None if loop.leading else f"{NOT_LEADER}: reconnect to reach it"
    return replica


@contextlib.asynccontextmanager
async def running(replica: Replica) -> AsyncIterator[asyncio.Event]:
    """Run ``replica`` in the background for the block (tests, embedding); the block gets the stop event."""
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(replica.run(stop, ready))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()
    try:
        yield stop
    finally:
        stop.set()
        await task


__all__ = ["GC_THRESHOLDS", "SWITCH_INTERVAL_S", "Replica", "build", "running", "tune_garbage_collection",
           "tune_thread_switching"]
