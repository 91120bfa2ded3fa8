"""Leases with fencing tokens: one holder at a time, expiry, and a deposed holder's late writes refused."""

from __future__ import annotations

import time

import pytest

from broker.errors import ConflictError, InputError
from broker.store import Fence, RedisStore

TTL_S = 30.0
SHORT_TTL_S = 0.1


def test_a_free_lease_is_acquired_with_a_token(store: RedisStore) -> None:
    assert store.acquire_lease("leader", "replica-a", TTL_S) == 1


def test_a_held_lease_cannot_be_acquired_even_by_its_holder(store: RedisStore) -> None:
    store.acquire_lease("leader", "replica-a", TTL_S)
    assert store.acquire_lease("leader", "replica-b", TTL_S) is None
    assert store.acquire_lease("leader", "replica-a", TTL_S) is None


def test_an_expired_lease_goes_to_the_next_holder_with_a_greater_token(store: RedisStore) -> None:
    first = store.acquire_lease("leader", "replica-a", SHORT_TTL_S)
    time.sleep(SHORT_TTL_S * 2)
    second = store.acquire_lease("leader", "replica-b", TTL_S)
    assert first is not None and second is not None and second > first


def test_renewing_keeps_the_lease_past_its_first_ttl(store: RedisStore) -> None:
    token = store.acquire_lease("leader", "replica-a", 0.6)
    assert token is not None
    time.sleep(0.3)
    assert store.renew_lease("leader", "replica-a", token, TTL_S)
    time.sleep(0.5)
    assert store.acquire_lease("leader", "replica-b", TTL_S) is None, "the first TTL has passed; renewed"


def test_a_deposed_holder_can_neither_renew_nor_release(store: RedisStore) -> None:
    old = store.acquire_lease("leader", "replica-a", SHORT_TTL_S)
    time.sleep(SHORT_TTL_S * 2)
    new = store.acquire_lease("leader", "replica-b", TTL_S)
    assert old is not None and new is not None
    assert not store.renew_lease("leader", "replica-a", old, TTL_S)
    assert not store.release_lease("leader", "replica-a", old)
    assert store.acquire_lease("leader", "replica-a", TTL_S) is None, "replica-b still holds it"


def test_a_released_lease_is_free_at_once(store: RedisStore) -> None:
    token = store.acquire_lease("leader", "replica-a", TTL_S)
    assert token is not None and store.release_lease("leader", "replica-a", token)
    assert store.acquire_lease("leader", "replica-b", TTL_S) == token + 1


def test_the_current_holder_writes_through_the_fence(store: RedisStore) -> None:
    token = store.acquire_lease("leader", "replica-a", TTL_S)
    assert token is not None
    store.fenced_write(Fence("leader", token), "pushed", "plan 3")
    assert store.fenced_value("pushed") == "plan 3"


def test_a_deposed_holders_late_write_is_refused(store: RedisStore) -> None:
    old = store.acquire_lease("leader", "replica-a", SHORT_TTL_S)
    time.sleep(SHORT_TTL_S * 2)
    new = store.acquire_lease("leader", "replica-b", TTL_S)
    assert old is not None and new is not None
    store.fenced_write(Fence("leader", new), "pushed", "plan 4 by b")
    with pytest.raises(ConflictError) as caught:
        store.fenced_write(Fence("leader", old), "pushed", "plan 3 by a, late")
    assert (caught.value.expected, caught.value.actual) == (old, new)
    assert store.fenced_value("pushed") == "plan 4 by b"


def test_a_token_never_issued_is_refused(store: RedisStore) -> None:
    token = store.acquire_lease("leader", "replica-a", TTL_S)
    assert token is not None
    with pytest.raises(ConflictError):
        store.fenced_write(Fence("leader", token + 1), "pushed", "forged")
    assert store.fenced_value("pushed") is None


def test_a_deposed_leaders_plan_is_refused_even_when_its_version_is_newer(store: RedisStore) -> None:
    old = store.acquire_lease("leader", "replica-a", SHORT_TTL_S)
    time.sleep(SHORT_TTL_S * 2)
    new = store.acquire_lease("leader", "replica-b", TTL_S)
    assert old is not None and new is not None
    store.put_plan('{"by": "b"}', 10, Fence("leader", new))
    with pytest.raises(ConflictError):
        store.put_plan('{"by": "a"}', 11, Fence("leader", old))
    stored = store.get_plan()
    assert stored is not None and (stored.version, stored.plan_json) == (10, '{"by": "b"}')


def test_leases_with_different_names_are_independent(store: RedisStore) -> None:
    assert store.acquire_lease("leader", "replica-a", TTL_S) == 1
    assert store.acquire_lease("agent-sweeper", "replica-b", TTL_S) == 1


@pytest.mark.parametrize(("name", "holder", "ttl_s", "field"), [
    ("", "replica-a", TTL_S, "lease"),
    ("a b", "replica-a", TTL_S, "lease"),
    ("leader", "", TTL_S, "holder"),
    ("leader", "replica-a", 0.0, "ttl_s"),
    ("leader", "replica-a", 1e9, "ttl_s"),
], ids=["empty-name", "space-in-name", "empty-holder", "zero-ttl", "huge-ttl"])
def test_bad_lease_arguments_name_their_field(store: RedisStore, name: str, holder: str, ttl_s: float,
                                             field: str) -> None:
    with pytest.raises(InputError) as caught:
        store.acquire_lease(name, holder, ttl_s)
    assert caught.value.field == field
