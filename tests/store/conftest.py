"""Fixtures: a real ``redis-server`` per test (free loopback port, append-only files in ``tmp_path``) and a
``RedisStore`` connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.store import PolicyLog, PolicyStore, RedisStore
from tests.redis_server import RedisServer, running_redis

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(redis_server.url)
    yield opened
    opened.close()


def log_of(store: PolicyStore) -> PolicyLog:
    return PolicyLog(store, clock=lambda: NOW)
