"""Policy versions in Redis: history round trip, compare-and-set, and no half-applied write under a race."""

from __future__ import annotations

import pytest
from redis.client import Pipeline

from broker.errors import ConflictError, PermanentPeerError
from broker.store import Action, RedisStore
from tests.quota.builders import group, policy
from tests.redis_server import RedisServer

from .conftest import NOW, log_of


def test_versions_round_trip_with_author_time_diff_and_history_newest_first(store: RedisStore) -> None:
    log = log_of(store)
    log.apply(policy(group("a").min(cpu="4")), "alice", comment="first")
    log.apply(policy(group("a").min(cpu="6")), "bob")
    log.rollback(1, "carol")
    assert store.head() == 3
    assert [(r.version, r.author, r.action) for r in store.history(10)] == [
        (3, "carol", Action.ROLLBACK), (2, "bob", Action.APPLY), (1, "alice", Action.APPLY)]
    first, second, third = store.get(1), store.get(2), store.get(3)
    assert first is not None and second is not None and third is not None
    assert (second.created_at, second.diff) == (NOW, ("~ a.min.cpu: 4 -> 6",))
    assert (first.comment, third.rollback_of, third.policy) == ("first", 1, first.policy)


def test_history_is_limited_to_the_newest_versions(store: RedisStore) -> None:
    log = log_of(store)
    for cores in range(1, 5):
        log.apply(policy(group("a").min(cpu=str(cores))), "alice")
    assert [r.version for r in store.history(2)] == [4, 3]
    assert store.history(0) == ()


def test_missing_versions_read_as_none(store: RedisStore) -> None:
    log_of(store).apply(policy(group("a")), "alice")
    assert (store.get(0), store.get(2)) == (None, None)


def test_an_append_that_skips_a_version_is_a_conflict_and_writes_nothing(store: RedisStore) -> None:
    first = log_of(store).apply(policy(group("a")), "alice").record
    with pytest.raises(ConflictError) as caught:
        store.append(first.model_copy(update={"version": 3}))
    assert (caught.value.expected, caught.value.actual) == (2, 1)
    assert store.head() == 1 and len(store.audit_log(10)) == 1


def test_a_rival_write_between_watch_and_exec_aborts_the_whole_transaction(
        store: RedisStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    log_of(store).apply(policy(group("a")), "alice")
    rival = RedisStore.from_url(redis_server.url)
    original = Pipeline.multi

    def multi_after_a_rival_write(pipe: Pipeline) -> None:
        monkeypatch.setattr(Pipeline, "multi", original)
        log_of(rival).apply(policy(group("c")), "rival")
        original(pipe)

    monkeypatch.setattr(Pipeline, "multi", multi_after_a_rival_write)
    with pytest.raises(ConflictError) as caught:
        log_of(store).apply(policy(group("b")), "bob")
    rival.close()
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert [r.author for r in store.history(10)] == ["rival", "alice"]
    assert [e.actor for e in store.audit_log(10)] == ["rival", "alice"], "no audit entry without its record"


def test_each_policy_write_leaves_an_audit_entry(store: RedisStore) -> None:
    log_of(store).apply(policy(group("a")), "alice")
    log_of(store).apply(policy(group("b")), "bob")
    log_of(store).rollback(1, "carol")
    assert [(e.actor, e.action, e.detail, e.at) for e in store.audit_log(10)] == [
        ("carol", "policy.rollback", "version 3, changes: 2", NOW),
        ("bob", "policy.apply", "version 2, changes: 2", NOW),
        ("alice", "policy.apply", "version 1, changes: 1", NOW)]


def test_a_record_that_does_not_validate_is_refused_not_misread(
        store: RedisStore, redis_server: RedisServer) -> None:
    with redis_server.client() as raw:
        raw.rpush("{broker}:policy:log", '{"version": 1}')
    with pytest.raises(PermanentPeerError, match="version 1 does not validate"):
        store.get(1)


def test_stores_with_different_prefixes_do_not_see_each_other(
        store: RedisStore, redis_server: RedisServer) -> None:
    log_of(store).apply(policy(group("a")), "alice")
    other = RedisStore.from_url(redis_server.url + "?prefix=staging")
    try:
        assert other.head() == 0
    finally:
        other.close()
