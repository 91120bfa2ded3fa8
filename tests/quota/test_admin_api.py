"""The admin HTTP API: roles, versioned writes, and a 4xx with a reason for every refused request."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from broker.service.admin_api import Role, Token, Tokens, create_app
from broker.store import MemoryStore, PolicyLog

from .builders import group


class AdminClient:
    """A synchronous face over ``httpx`` and the ASGI app in process (no socket, no server thread)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def token(name: str, role: Role, *groups: str) -> Token:
    return Token(name=name, sha256=hashlib.sha256(f"secret-{name}".encode()).hexdigest(), role=role,
                 groups=groups)


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer secret-{name}"}


BASE = {"groups": [group("org").min(cpu="40").obj(), group("t1").under("org").min(cpu="10").obj(),
                   group("other").min(cpu="10").obj()]}


@pytest.fixture
def client() -> AdminClient:
    tokens = Tokens(tokens=(token("root", Role.ADMIN), token("owner", Role.TEAM_OWNER, "org"),
                            token("reader", Role.VIEWER)))
    log = PolicyLog(MemoryStore())
    api = AdminClient(create_app(log, tokens, max_body_bytes=64 * 1024))
    assert api.put("/v1/policy", json={"policy": BASE, "expectedVersion": 0},
                   headers=auth("root")).status_code == 201
    return api


def with_groups(*extra: dict[str, Any], replace: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    groups = [replace.get(g["name"], g) if replace else g for g in BASE["groups"]]
    return {"groups": [*groups, *extra]}


def test_a_viewer_reads_the_current_policy(client: AdminClient) -> None:
    answer = client.get("/v1/policy", headers=auth("reader"))
    assert answer.status_code == 200
    assert answer.json()["version"] == 1 and answer.json()["policy"] == BASE


def test_a_request_without_a_token_is_401_with_a_reason(client: AdminClient) -> None:
    answer = client.get("/v1/policy")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in answer.json()["detail"]


def test_an_unknown_token_is_401(client: AdminClient) -> None:
    assert client.get("/v1/policy", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_viewer_may_not_apply(client: AdminClient) -> None:
    answer = client.put("/v1/policy", json={"policy": BASE, "expectedVersion": 1}, headers=auth("reader"))
    assert answer.status_code == 403 and "team-owner" in answer.json()["detail"]


def test_a_team_owner_may_add_a_group_inside_its_subtree(client: AdminClient) -> None:
    body = {"policy": with_groups(group("t2").under("org").min(cpu="5").obj()), "expectedVersion": 1}
    answer = client.put("/v1/policy", json=body, headers=auth("owner"))
    assert answer.status_code == 201 and answer.json()["author"] == "owner"


def test_a_team_owner_may_not_change_its_own_grant(client: AdminClient) -> None:
    body = {"policy": with_groups(replace={"org": group("org").min(cpu="50").obj()}), "expectedVersion": 1}
    answer = client.put("/v1/policy", json=body, headers=auth("owner"))
    assert answer.status_code == 403 and answer.json()["field"] == "groups[org]"


def test_a_team_owner_may_not_touch_another_subtree(client: AdminClient) -> None:
    body = {"policy": with_groups(replace={"other": group("other").min(cpu="1").obj()}), "expectedVersion": 1}
    assert client.put("/v1/policy", json=body, headers=auth("owner")).status_code == 403


def test_a_team_owner_stays_within_the_min_its_parent_grants(client: AdminClient) -> None:
    body = {"policy": with_groups(group("t2").under("org").min(cpu="31").obj()), "expectedVersion": 1}
    answer = client.put("/v1/policy", json=body, headers=auth("owner"))
    assert answer.status_code == 422 and answer.json()["field"] == "policy.groups[org].min.cpu"


def test_a_stale_expected_version_is_409_and_nothing_changes(client: AdminClient) -> None:
    body = {"policy": with_groups(group("x").obj()), "expectedVersion": 0}
    assert client.put("/v1/policy", json=body, headers=auth("root")).status_code == 409
    assert client.get("/v1/policy", headers=auth("reader")).json()["version"] == 1


def test_an_invalid_policy_is_422_naming_the_group_and_field(client: AdminClient) -> None:
    body = {"policy": {"groups": [{"name": "a", "min": {"cpu": "-3"}}]}, "expectedVersion": 1}
    answer = client.put("/v1/policy", json=body, headers=auth("root"))
    assert answer.status_code == 422 and answer.json()["field"] == "policy.groups[a].min.cpu"


@pytest.mark.parametrize(("content", "kind", "status"), [
    pytest.param(b"{oops", "application/json", 400, id="malformed-json"),
    pytest.param(b"groups: []", "text/yaml", 415, id="not-json"),
    pytest.param(b"[" + b"1," * 40_000 + b"1]", "application/json", 413, id="too-large"),
])
def test_a_bad_body_is_refused_with_its_status(client: AdminClient, content: bytes, kind: str,
                                               status: int) -> None:
    answer = client.put("/v1/policy", content=content, headers={**auth("root"), "Content-Type": kind})
    assert answer.status_code == status and answer.json()["detail"]


def test_history_lists_versions_with_their_diff(client: AdminClient) -> None:
    client.put("/v1/policy", json={"policy": with_groups(group("x").obj()), "expectedVersion": 1},
               headers=auth("root"))
    versions = client.get("/v1/policy/history?limit=5", headers=auth("reader")).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["diff"] == ["+ group x"]


def test_only_an_admin_rolls_back(client: AdminClient) -> None:
    client.put("/v1/policy", json={"policy": with_groups(group("x").obj()), "expectedVersion": 1},
               headers=auth("root"))
    body = {"version": 1, "expectedVersion": 2}
    assert client.post("/v1/policy/rollback", json=body, headers=auth("owner")).status_code == 403
    answer = client.post("/v1/policy/rollback", json=body, headers=auth("root"))
    assert answer.status_code == 201 and answer.json()["policy"] == BASE and answer.json()["version"] == 3


def test_an_unknown_version_is_404(client: AdminClient) -> None:
    assert client.get("/v1/policy/versions/9", headers=auth("reader")).status_code == 404


def test_dry_run_shows_runtime_changes_without_writing(client: AdminClient) -> None:
    body = {"policy": with_groups(replace={"other": group("other").min(cpu="10").max(cpu="15").obj()}),
            "pool": {"cpu": "70"}, "demand": {"t1": {"cpu": "40"}, "other": {"cpu": "40"}}}
    answer = client.post("/v1/policy/dry-run", json=body, headers=auth("reader"))
    assert answer.status_code == 200
    runtime = answer.json()["runtime"]["other"]
    assert (runtime["before"]["runtime"]["cpu_milli"], runtime["after"]["runtime"]["cpu_milli"]) == (30_000,
                                                                                                     15_000)
    assert client.get("/v1/policy", headers=auth("reader")).json()["version"] == 1


def test_the_openapi_document_lists_every_route(client: AdminClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/v1/policy", "/v1/policy/history", "/v1/policy/versions/{version}",
                          "/v1/policy/dry-run", "/v1/policy/rollback", "/v1/runtime"}
