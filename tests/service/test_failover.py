"""High availability on a real Redis: replicas elect one leader through a fenced lease; when the leader dies
another leads within 15 s; a leader that was paused and comes back finds its late plans refused and steps down;
every replica's extender keeps answering from the stored plans."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.errors import ConflictError
from broker.service.control.config import LeaderConfig
from broker.store.records import Fence
from broker.store.redis_store import RedisStore
from tests.redis_server import RedisServer
from tests.service.conftest import small_scenario
from tests.service.processes import ServeProcess

DEFAULTS = LeaderConfig()
"""The shipped lease settings (10 s lease, renewed every 2 s): the 15 s promise is tested as users run it."""


def _config(directory: Path, redis: RedisServer) -> dict[str, Any]:
    return {
        "interval_s": 0.5,
        "store": redis.url,
        "leader": {"kind": "redis", "ttl_s": DEFAULTS.ttl_s, "renew_s": DEFAULTS.renew_s},
        "fleet": {"scenario": str(small_scenario(directory)), "speed": 60.0},
        "log": {"format": "text"},
    }


@pytest.fixture
def replicas(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServeProcess]]:
    config = _config(tmp_path, redis_server)
    started = [ServeProcess(tmp_path, name, config).start() for name in ("replica-a", "replica-b")]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def _leader(replicas: list[ServeProcess]) -> tuple[ServeProcess, ServeProcess, dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [r.ready() for r in replicas]
        leading = [(r, s) for r, s in zip(replicas, states, strict=True) if s and s.get("leading")]
        if len(leading) == 1 and leading[0][1].get("plan_version"):
            leader, state = leading[0]
            follower = next(r for r in replicas if r is not leader)
            return leader, follower, state
        time.sleep(0.2)
    raise AssertionError("no single leader with a plan within 60 s:\n" + "\n".join(r.log()[-2000:] for r in replicas))


@pytest.mark.slow
def test_killing_the_leader_hands_the_loop_to_another_replica_within_15_s(
        replicas: list[ServeProcess], redis_server: RedisServer) -> None:
    leader, follower, state = _leader(replicas)
    follower.wait_for(lambda b: (b.get("plan_version") or 0) >= 1, 10, "the follower serving the stored plan")
    old_token = state["lease_token"]
    killed_at = time.monotonic()
    leader.signal(signal.SIGKILL)
    body = follower.wait_for(lambda b: b.get("leading") is True, 15, "the follower taking the lease")
    took_s = time.monotonic() - killed_at
    assert took_s < 15
    print(f"failover after SIGKILL: {took_s:.2f} s")
    assert body["lease_token"] > old_token
    version = follower.wait_for(lambda b: b["plan_version"] > body["plan_version"], 10, "a new plan")["plan_version"]
    store = RedisStore.from_url(redis_server.url)
    try:
        with pytest.raises(ConflictError):  # what the dead leader's late write would meet
            store.put_plan('{"version": 0}', version + 100, Fence("broker-leader", old_token))
    finally:
        store.close()


@pytest.mark.slow
def test_a_paused_leader_that_comes_back_has_its_late_plans_refused_and_follows(
        replicas: list[ServeProcess]) -> None:
    leader, follower, _ = _leader(replicas)
    leader.signal(signal.SIGSTOP)
    follower.wait_for(lambda b: b.get("leading") is True, 15, "the follower taking the lease")
    leader.signal(signal.SIGCONT)
    leader.wait_for(lambda b: b.get("leading") is False, 10, "the old leader stepping down")
    follower.wait_for(lambda b: b.get("leading") is True, 2, "the new leader keeping the lease")
    newest = follower.ready()
    assert newest is not None
    leader.wait_for(lambda b: b["plan_version"] >= newest["plan_version"], 5, "the old leader following plans")
