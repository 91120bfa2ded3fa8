"""The quota admin API over the Redis store: writes land in Redis, and an outage is a 503, not a 500."""

from __future__ import annotations

from broker.service.admin_api import Role, Tokens, create_app
from broker.store import PolicyLog, RedisStore
from tests.quota.test_admin_api import BASE, AdminClient, auth, token
from tests.redis_server import RedisServer


def admin_over(store: RedisStore) -> AdminClient:
    return AdminClient(create_app(PolicyLog(store), Tokens(tokens=(token("root", Role.ADMIN),))))


def test_an_applied_policy_is_stored_in_redis(store: RedisStore) -> None:
    answer = admin_over(store).put("/v1/policy", json={"policy": BASE, "expectedVersion": 0},
                                   headers=auth("root"))
    assert answer.status_code == 201
    record = store.get(1)
    assert record is not None and record.author == "root"


def test_a_redis_outage_is_a_503_with_retry_after(store: RedisStore, redis_server: RedisServer) -> None:
    api = admin_over(store)
    redis_server.kill()
    answer = api.get("/v1/policy", headers=auth("root"))
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable" and answer.headers["retry-after"] == "1"
