"""Fixtures of the service tests: a small simulated fleet, configurations, replicas running in the test's loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.service.control.config import ServiceConfig
from plugins.sim.scenario import default_scenario
from tests.kubernetes.kube_apiserver import StandInApiServer
from tests.redis_server import RedisServer, running_redis
from tests.service.kubernetes_peer import served_api_server
from tests.service_sinks.conftest import kube, rm  # noqa: F401  (the stand-in peers, shared as fixtures)


def small_scenario(directory: Path, node_scale: float = 0.1) -> Path:
    """The embedded default scenario at a tenth of its fleet (31 nodes), written as a file."""
    data = default_scenario().model_dump(mode="json", exclude_none=True)
    data.update({"name": "small", "node_scale": node_scale, "days": 0.5, "warmup_days": 0.5})
    path = directory / "small.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def service_config(directory: Path, **fields: Any) -> ServiceConfig:
    """A fast replica: small fleet, half-second interval, HTTP on a free port."""
    base: dict[str, Any] = {
        "replica": "test-replica",
        "interval_s": 0.5,
        "http": {"port": 0},
        "fleet": {"scenario": str(small_scenario(directory)), "speed": 60.0},
        "planner": {"time_limit_s": 2.0},
        "log": {"format": "text"},
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return ServiceConfig.model_validate(base)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def api_server() -> Iterator[tuple[StandInApiServer, str]]:
    """A Kubernetes API server stand-in (with the ElasticQuotaPolicy CRD) and its URL."""
    with served_api_server() as served:
        yield served
