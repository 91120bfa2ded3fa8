"""The last plan (a versioned write: only a newer version replaces it) and the bounded audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.errors import ConflictError, InputError
from broker.store import AuditEntry, RedisStore, StoredPlan
from tests.redis_server import RedisServer

from .conftest import NOW


def test_no_plan_is_stored_at_first(store: RedisStore) -> None:
    assert store.get_plan() is None
    assert store.plan_version() == 0


def test_a_newer_plan_replaces_the_stored_one(store: RedisStore) -> None:
    store.put_plan('{"version": 0}', 0)
    store.put_plan('{"version": 7}', 7)
    assert store.get_plan() == StoredPlan(version=7, plan_json='{"version": 7}')
    assert store.plan_version() == 7  # what followers poll before fetching the document


@pytest.mark.parametrize("version", [7, 6], ids=["same-version", "older-version"])
def test_a_plan_that_is_not_newer_is_refused_and_the_stored_one_kept(store: RedisStore, version: int) -> None:
    store.put_plan('{"version": 7}', 7)
    with pytest.raises(ConflictError) as caught:
        store.put_plan('{"late": true}', version)
    assert (caught.value.expected, caught.value.actual) == (version, 7)
    assert store.get_plan() == StoredPlan(version=7, plan_json='{"version": 7}')


def test_a_negative_plan_version_is_an_input_error(store: RedisStore) -> None:
    with pytest.raises(InputError) as caught:
        store.put_plan("{}", -1)
    assert caught.value.field == "version"


def entry(minute: int) -> AuditEntry:
    return AuditEntry(at=NOW + timedelta(minutes=minute), actor="ops", action="lease.acquire",
                      detail=f"event {minute}")


def test_the_audit_log_lists_entries_newest_first(store: RedisStore) -> None:
    for minute in range(3):
        store.audit(entry(minute))
    assert store.audit_log(2) == (entry(2), entry(1))


def test_the_audit_log_keeps_only_the_newest_entries(redis_server: RedisServer) -> None:
    bounded = RedisStore.from_url(redis_server.url + "?audit_max=5")
    try:
        for minute in range(8):
            bounded.audit(entry(minute))
        assert bounded.audit_log(100) == tuple(entry(m) for m in (7, 6, 5, 4, 3))
        with redis_server.client() as raw:
            assert raw.xlen("{broker}:audit") == 5
    finally:
        bounded.close()
