"""Fixtures for the Kubernetes adapters: a stand-in API server (with the project's quota CRD) over real HTTP,
official clients pointed at it, and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.extender.live_server import live_server

from .kube_apiserver import StandInApiServer

CRD_PATH = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "elasticquota.yaml"


def quota_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return crd


def node_obj(name: str, **capacity: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"disk": "true"}},
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {"capacity": {"cpu": "32", "memory": "128Gi", **capacity}},
    }


class Clock:
    """A wall clock the test moves by hand (timezone-aware, like the real one)."""

    def __init__(self, now: datetime = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server() -> StandInApiServer:
    stand_in = StandInApiServer(crd=quota_crd())
    stand_in.put("nodes", node_obj("n1"))
    stand_in.put("nodes", node_obj("n2"))
    return stand_in


@pytest.fixture
def url(server: StandInApiServer) -> Iterator[str]:
    with live_server(server.app) as base:
        yield base


@pytest.fixture
def api(url: str) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = url
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)
