"""Kill -9 of redis-server and a restart: acknowledged writes survive, calls during the outage fail as
temporary, and the same store object works again without being reopened."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import ConflictError, TemporaryPeerError
from broker.store import Fence, RedisStore
from tests.quota.builders import group, policy
from tests.redis_server import RedisServer, running_redis

from .conftest import log_of


def test_acknowledged_policy_writes_survive_a_kill_9(store: RedisStore, redis_server: RedisServer) -> None:
    log = log_of(store)
    written = [log.apply(policy(group("a").min(cpu=str(cores))), "alice").record for cores in range(1, 6)]
    redis_server.kill()
    redis_server.restart()
    assert [store.get(r.version) for r in written] == written


def test_without_the_append_only_file_a_kill_9_loses_them(tmp_path: Path) -> None:
    """The control for the test above: the same run on a server without appendonly loses everything, so
    the survival seen there comes from the append-only file and not from the test's setup."""
    with running_redis(tmp_path / "redis", "--appendonly", "no") as server:
        volatile = RedisStore.from_url(server.url)
        try:
            log_of(volatile).apply(policy(group("a")), "alice")
            server.kill()
            server.restart()
            assert volatile.head() == 0
        finally:
            volatile.close()


def test_calls_during_the_outage_are_temporary_peer_errors(
        store: RedisStore, redis_server: RedisServer) -> None:
    first = log_of(store).apply(policy(group("a")), "alice").record
    redis_server.kill()
    with pytest.raises(TemporaryPeerError):
        store.head()
    with pytest.raises(TemporaryPeerError):
        store.append(first.model_copy(update={"version": 2}))
    with pytest.raises(TemporaryPeerError):
        store.put_plan("{}", 1)
    with pytest.raises(TemporaryPeerError):
        store.acquire_lease("leader", "replica-a", 30.0)


def test_the_store_reconnects_by_itself_after_the_restart(
        store: RedisStore, redis_server: RedisServer) -> None:
    log_of(store).apply(policy(group("a")), "alice")
    redis_server.kill()
    with pytest.raises(TemporaryPeerError):
        store.head()
    redis_server.restart()
    assert log_of(store).apply(policy(group("b")), "bob").record.version == 2
    assert [r.author for r in store.history(5)] == ["bob", "alice"]


def test_a_pooled_connection_killed_under_the_store_is_replaced_on_the_next_call(
        store: RedisStore, redis_server: RedisServer) -> None:
    store.head()
    redis_server.kill()
    redis_server.restart()
    assert store.head() == 0


def test_fencing_outlives_a_restart(store: RedisStore, redis_server: RedisServer) -> None:
    old = store.acquire_lease("leader", "replica-a", 0.1)
    assert old is not None
    redis_server.kill()
    redis_server.restart()
    store.release_lease("leader", "replica-a", old)
    new = store.acquire_lease("leader", "replica-b", 30.0)
    assert new == old + 1
    with pytest.raises(ConflictError):
        store.fenced_write(Fence("leader", old), "pushed", "late")
