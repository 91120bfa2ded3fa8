"""The HTTP face over a real uvicorn: limits and errors as 4xx with a message, health, readiness, metrics,
plans followed from a file, TLS."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from broker.model import Plan
from broker.service.extender import Extender, ExtenderConfig, FilePlanSource, TlsFiles, create_app

from .builders import filter_body, node, plan, pod, team
from .conftest import Clock
from .live_server import live_server


@pytest.fixture
def served(extender: Extender) -> Iterator[httpx.Client]:
    extender.install(plan(nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a")]))
    with live_server(create_app(extender, max_body_bytes=4096)) as url, httpx.Client(base_url=url) as client:
        yield client


def test_a_body_over_the_limit_is_refused_before_reading(served: httpx.Client) -> None:
    response = served.post("/filter", content=b" " * 5000, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"Error": "body larger than 4096 bytes"}


def test_a_chunked_body_over_the_limit_is_refused_while_reading(served: httpx.Client) -> None:
    chunks = iter([b" " * 3000, b" " * 3000])
    response = served.post("/filter", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_non_json_content_type_is_refused(served: httpx.Client) -> None:
    response = served.post("/filter", content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["Error"]


def test_a_malformed_body_is_a_400_naming_the_field(served: httpx.Client) -> None:
    response = served.post("/filter", content=orjson.dumps({"Pod": {}, "NodeNames": ["a", 3]}))
    assert response.status_code == 400
    assert response.json() == {"Error": "NodeNames[1]: expected a node name, got a number"}


def test_invalid_json_is_a_400(served: httpx.Client) -> None:
    response = served.post("/prioritize", content=b'{"Pod": ')
    assert response.status_code == 400 and response.json()["Error"].startswith("(body): not valid JSON")


def test_a_bad_quantity_names_the_container_field(served: httpx.Client) -> None:
    body = pod("p").batch().obj()
    body["spec"]["containers"][0]["resources"]["requests"]["broker.elastic.io/batch-memory"] = "lots"
    response = served.post("/filter", content=orjson.dumps({"Pod": body, "NodeNames": ["n1"]}))
    assert response.status_code == 400
    assert response.json()["Error"].startswith(
        "Pod.spec.containers[0].resources.requests.broker.elastic.io/batch-memory: 'lots' is not"
    )


def test_verbs_answer_only_post(served: httpx.Client) -> None:
    assert served.get("/filter").status_code == 405


def test_healthz_and_readyz_with_a_fresh_plan(served: httpx.Client) -> None:
    assert served.get("/healthz").text == "ok"
    ready = served.get("/readyz")
    assert ready.status_code == 200 and ready.json()["plan_version"] == 1


def test_readyz_is_503_without_a_plan(clock: Clock) -> None:
    with live_server(create_app(Extender(ExtenderConfig(), clock=clock))) as url:
        response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503 and response.json() == {"Error": "no plan yet"}


def test_metrics_count_results_and_time_per_verb(served: httpx.Client) -> None:
    served.post("/filter", content=filter_body(pod("p").batch(), ["n1", "ghost"]))
    served.post("/prioritize", content=b"[]")
    text = served.get("/metrics").text
    assert 'broker_extender_requests_total{result="ok",verb="filter"} 1.0' in text
    assert 'broker_extender_requests_total{result="bad_request",verb="prioritize"} 1.0' in text
    assert 'broker_extender_filter_nodes_total{outcome="unresolvable"} 1.0' in text
    assert 'broker_extender_request_seconds_count{verb="filter"} 1.0' in text
    assert "broker_extender_plan_version 1.0" in text


def test_the_url_prefix_is_honoured(extender: Extender) -> None:
    with live_server(create_app(extender, url_prefix="/scheduler/")) as url:
        response = httpx.post(f"{url}/scheduler/filter", content=filter_body(pod("p"), ["n1"]))
    assert response.status_code == 200


def write_plan(path: Path, plan_: Plan) -> None:
    """Write atomically, as a planner should: a temporary file, then a rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(plan_.model_dump_json().encode())
    os.replace(tmp, path)


def wait_for(check: object, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s")


def test_a_new_plan_file_is_answered_from_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    extender = Extender(ExtenderConfig(max_plan_age_s=1e9))
    source = FilePlanSource(path, poll_s=0.1)
    with live_server(create_app(extender, source)) as url:
        assert httpx.get(f"{url}/readyz").status_code == 503
        write_plan(path, plan(nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a")], version=1))
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 1.0)
        write_plan(path, plan(nodes=[node("n2").places("team-a", "exec")], teams=[team("team-a")], version=2))
        wait_for(lambda: httpx.get(f"{url}/readyz").json()["plan_version"] == 2, 1.0)
        result = httpx.post(f"{url}/filter", content=filter_body(pod("p").batch(), ["n1", "n2"])).json()
        assert result["NodeNames"] == ["n2"]


def test_a_broken_plan_file_keeps_the_last_good_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, plan(nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a")], version=3))
    extender = Extender(ExtenderConfig(max_plan_age_s=1e9))
    with live_server(create_app(extender, FilePlanSource(path, poll_s=0.05))) as url:
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 2.0)
        path.write_text('{"version": "three"}')
        wait_for(lambda: "version" in httpx.get(f"{url}/readyz").json()["last_load_error"], 2.0)
        assert httpx.get(f"{url}/readyz").json()["plan_version"] == 3


def test_a_plan_with_a_broken_node_keeps_the_last_good_plan_and_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    good = plan(nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a")], version=3)
    write_plan(path, good)
    extender = Extender(ExtenderConfig(max_plan_age_s=1e9))
    with live_server(create_app(extender, FilePlanSource(path, poll_s=0.05))) as url:
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 2.0)
        broken = orjson.loads(good.model_copy(update={"version": 4}).model_dump_json())
        broken["nodes"][0]["placements"][0]["count"] = -1
        path.write_bytes(orjson.dumps(broken))
        wait_for(lambda: httpx.get(f"{url}/readyz").json()["last_load_error"], 2.0)
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["plan_version"] == 3
        assert ready["last_load_error"].startswith("nodes[0].placements[0].count:")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_serves_the_verbs_over_https(extender: Extender, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with live_server(create_app(extender), TlsFiles(cert, key)) as url:
        assert url.startswith("https://")
        response = httpx.post(
            f"{url}/filter",
            content=filter_body(pod("p"), ["n1"]),
            verify=ssl.create_default_context(cafile=cert),
        )
    assert response.status_code == 200


def test_tls_refuses_a_key_that_does_not_exist(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    from broker.errors import InputError

    with pytest.raises(InputError, match="tls-key"):
        TlsFiles(certificate[0], tmp_path / "missing.key").check()
