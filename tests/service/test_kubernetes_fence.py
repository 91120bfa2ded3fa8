"""Replicas elected by a Kubernetes Lease store their plans fenced in Redis: each new holder's token (the Lease's
``leaseTransitions``) is adopted by the store before it leads, so a deposed leader's late plan is refused, also
after a restart under the same name, a Lease deleted and created again, or a switch from Redis election. Against
the stand-in API server's Leases and a real ``redis-server``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from broker.errors import ConflictError
from broker.service.control.leader import KubernetesElector
from broker.service.control.service import build
from broker.store.records import Fence
from broker.store.redis_store import RedisStore
from plugins.kubernetes.lease import LeaseElector
from tests.kubernetes.conftest import Clock
from tests.kubernetes.kube_apiserver import StandInApiServer
from tests.redis_server import RedisServer
from tests.service.conftest import service_config
from tests.service.kubernetes_peer import CLUSTER, clusters_file

NS, LEASE = "broker-system", "broker-leader"
PLAN = '{"version": 0}'


@pytest.fixture
def api(api_server: tuple[StandInApiServer, str]) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = api_server[1]
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(redis_server.url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def replica(api: client.ApiClient, identity: str, clock: Clock, store: RedisStore) -> KubernetesElector:
    """A replica's elector as ``broker serve`` builds it, on the test's hand-moved clock (a 15 s Lease)."""
    lease = LeaseElector(client.CoordinationV1Api(api), NS, LEASE, identity, peer="kube-apiserver test",
                         lease_duration_s=15, renew_deadline_s=10, clock=clock)
    return KubernetesElector(lease, LEASE, 15.0, fences=store, clock=lambda: clock().timestamp())


def campaign(elector: KubernetesElector) -> Fence | None:
    return asyncio.run(elector.campaign())


def lease_transitions(server: StandInApiServer) -> object:
    return server.leases.get(NS, LEASE)["spec"]["leaseTransitions"]


def test_a_deposed_leaders_plan_is_refused_once_another_replica_took_the_lease(
        api: client.ApiClient, clock: Clock, store: RedisStore) -> None:
    a, b = replica(api, "broker-a", clock, store), replica(api, "broker-b", clock, store)
    old = campaign(a)
    assert old == Fence(LEASE, 0)
    store.put_plan(PLAN, 1, old)
    assert campaign(b) is None  # a holds the Lease
    clock.advance(15)  # a is paused: it neither renews nor writes
    new = campaign(b)
    assert new == Fence(LEASE, 1)
    with pytest.raises(ConflictError):  # a comes back and writes the plan it had ready
        store.put_plan(PLAN, 2, old)
    store.put_plan(PLAN, 2, new)
    stored = store.get_plan()
    assert stored is not None and stored.version == 2
    assert campaign(a) is None  # and a, renewing, finds b's Lease and follows


def test_a_replica_restarted_under_the_same_name_leads_with_a_new_token(
        api: client.ApiClient, clock: Clock, store: RedisStore) -> None:
    before = replica(api, "broker-a", clock, store)
    old = campaign(before)
    assert old is not None
    after = replica(api, "broker-a", clock, store)  # the same pod name, a new process
    new = campaign(after)
    assert new is not None and new.token == old.token + 1
    with pytest.raises(ConflictError):
        store.put_plan(PLAN, 1, old)
    store.put_plan(PLAN, 1, new)


def test_a_lease_behind_the_store_moves_its_term_past_the_stores_newest_token(
        api: client.ApiClient, api_server: tuple[StandInApiServer, str], clock: Clock,
        store: RedisStore) -> None:
    for _ in range(3):  # the replicas were elected through the store before (leader.kind: redis), tokens 1..3
        token = store.acquire_lease(LEASE, "old-replica", 10)
        assert token is not None and store.release_lease(LEASE, "old-replica", token)
    fence = campaign(replica(api, "broker-a", clock, store))
    assert fence == Fence(LEASE, 4)
    assert lease_transitions(api_server[0]) == 4  # the Lease says so too: the next holder gets 5
    with pytest.raises(ConflictError):
        store.put_plan(PLAN, 1, Fence(LEASE, 3))
    store.put_plan(PLAN, 1, fence)


def test_a_lease_deleted_and_created_again_keeps_tokens_growing(
        api: client.ApiClient, api_server: tuple[StandInApiServer, str], clock: Clock,
        store: RedisStore) -> None:
    server = api_server[0]
    a, b = replica(api, "broker-a", clock, store), replica(api, "broker-b", clock, store)
    assert campaign(a) == Fence(LEASE, 0)
    assert campaign(b) is None
    clock.advance(15)
    before = campaign(b)
    assert before == Fence(LEASE, 1)
    server.leases.delete(NS, LEASE)  # the Lease's history is gone: created again, it starts at 0
    clock.advance(2)
    after = campaign(b)
    assert after is not None and after.token == 2 and lease_transitions(server) == 2
    for stale in (Fence(LEASE, 0), before):
        with pytest.raises(ConflictError):
            store.put_plan(PLAN, 1, stale)
    store.put_plan(PLAN, 1, after)


def test_a_new_term_leads_only_once_the_store_adopted_its_token(
        api: client.ApiClient, clock: Clock, store: RedisStore, redis_server: RedisServer) -> None:
    a = replica(api, "broker-a", clock, store)
    redis_server.kill()
    assert campaign(a) is None  # it holds the Lease, but a plan fenced with an unadopted token would be refused
    redis_server.restart()
    clock.advance(2)
    fence = campaign(a)
    assert fence == Fence(LEASE, 0)
    store.put_plan(PLAN, 1, fence)


def test_replicas_elected_by_a_lease_publish_fenced_plans_through_the_loop(
        tmp_path: Path, api_server: tuple[StandInApiServer, str], redis_server: RedisServer) -> None:
    clusters = str(clusters_file(tmp_path, api_server[1]))
    leader = {"kind": "kubernetes", "cluster": CLUSTER, "namespace": NS, "ttl_s": 1.0, "renew_s": 0.5}
    a, b = (build(service_config(tmp_path, replica=name, store=redis_server.url, kubernetes_clusters=clusters,
                                 leader=leader), {})
            for name in ("broker-a", "broker-b"))

    async def scenario() -> None:
        await a.loop.campaign()
        first = await a.loop.cycle()
        assert first.plan is not None and first.plan.version == 1
        deposed = a.loop.fence
        assert deposed is not None
        await b.loop.campaign()
        assert not b.loop.leading
        await asyncio.sleep(1.2)  # a stops renewing; the 1 s Lease runs out on b's clock
        await b.loop.campaign()
        assert b.loop.fence is not None and b.loop.fence.token > deposed.token
        await b.feed.poll_once()  # b's board follows the store (v1) before it publishes the next version
        second = await b.loop.cycle()
        assert second.plan is not None and second.plan.version == 2
        late = first.plan.model_copy(update={"version": 3}).model_dump_json()
        with pytest.raises(ConflictError):  # what a's loop would store if it had passed its lease check
            a.store.put_plan(late, 3, deposed)
        await a.loop.campaign()
        assert a.loop.fence is None and not a.loop.leading

    started = time.monotonic()
    asyncio.run(scenario())
    print(f"lease handover and fenced publish: {time.monotonic() - started:.2f} s")
    stored = b.store.get_plan()
    assert stored is not None and stored.version == 2
