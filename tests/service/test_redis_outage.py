"""Kill -9 of the Redis server under a running broker: no acknowledged policy change is lost, the extender keeps
answering from the last plan meanwhile (and says the store is unreadable), and the broker reconnects by itself."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from plugins.sim.scenario import default_scenario
from tests.extender.builders import filter_body, pod
from tests.redis_server import RedisServer
from tests.service.conftest import small_scenario
from tests.service.processes import ServeProcess

SECRET = "s3cret-admin-token"


@pytest.mark.slow
def test_a_redis_kill_loses_no_acknowledged_change_and_the_broker_recovers(
        tmp_path: Path, redis_server: RedisServer) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"name": "ops", "sha256": hashlib.sha256(SECRET.encode()).hexdigest(), "role": "admin"}]}))
    replica = ServeProcess(tmp_path, "replica-a", {
        "interval_s": 0.5, "store": redis_server.url,
        "leader": {"kind": "redis", "ttl_s": 4.0, "renew_s": 0.5},
        "fleet": {"scenario": str(small_scenario(tmp_path)), "speed": 60.0},
        "http": {"admin_tokens": str(tokens)}, "log": {"format": "text"},
    }).start()
    stack = contextlib.ExitStack()
    try:
        before = replica.wait_for(lambda b: (b.get("plan_version") or 0) >= 2, 60, "a plan")
        api = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{replica.port}",
                                               headers={"Authorization": f"Bearer {SECRET}"}, timeout=5.0))
        current = api.get("/admin/v1/policy").json()
        policy = current["policy"]
        policy["groups"][0]["description"] = "changed just before the crash"
        applied = api.put("/admin/v1/policy", json={"policy": policy, "expectedVersion": current["version"]})
        assert applied.status_code == 201, applied.text
        acknowledged = applied.json()["version"]

        redis_server.kill()
        names = [f"idc-a-n{i:05d}" for i in range(1, 6)]
        team = default_scenario().teams[1].name
        for _ in range(10):  # the extender answers throughout the outage, from the last plan
            answer = httpx.post(f"http://127.0.0.1:{replica.port}/extender/filter",
                                content=filter_body(pod("exec-1").ns(team).batch(cpu=100, memory="128Mi"), names),
                                headers={"Content-Type": "application/json"}, timeout=2.0)
            assert answer.status_code == 200
            assert set(orjson.loads(answer.content)) >= {"NodeNames", "FailedNodes"}
            time.sleep(0.2)
        outage = replica.wait_for(lambda b: b["store_readable"] is False, 10, "the store reported unreadable")
        assert outage["plan_version"] >= before["plan_version"]
        assert api.get("/admin/v1/policy").status_code == 503  # the admin API says so, no traceback

        redis_server.restart()
        replica.wait_for(lambda b: b["store_readable"] is True and b["leading"] is True, 20, "reconnection")
        replica.wait_for(lambda b: b["plan_version"] > outage["plan_version"], 20, "new plans after the outage")
        after = api.get("/admin/v1/policy").json()
        assert after["version"] == acknowledged
        assert after["policy"]["groups"][0]["description"] == "changed just before the crash"
        assert 'broker_store_errors_total' in replica.metrics()
    finally:
        stack.close()
        replica.stop()
