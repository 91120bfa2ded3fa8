"""``broker yarn status`` and ``broker yarn sync``: output, dry run, exit codes, clear errors."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from broker.cli.main import app

from .conftest import node, plan
from .standin_rm import RMServer, StandinRM

runner = CliRunner()


def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_bytes(orjson.dumps(plan(node(0, cpu="2", memory="4Gi")).model_dump(mode="json")))
    return path


def test_status_shows_the_active_rm_and_nodes(server: RMServer) -> None:
    result = runner.invoke(app, ["yarn", "status", "--rm", server.url])
    assert result.exit_code == 0, result.output
    assert f"{server.url}: ACTIVE" in result.output
    assert "nodes: 4 (RUNNING 4)" in result.output


def test_sync_dry_run_prints_the_writes_and_sends_none(
    server: RMServer, rm: StandinRM, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["yarn", "sync", "--rm", server.url, "--plan", str(plan_file(tmp_path)), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "1 write(s) would send" in result.output
    assert "POST /nodes/nm-0.example:8041/resource" in result.output
    assert rm.writes() == []


def test_sync_applies_and_prints_the_read_back(server: RMServer, rm: StandinRM, tmp_path: Path) -> None:
    result = runner.invoke(app, ["yarn", "sync", "--rm", server.url, "--plan", str(plan_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "read back nm-0.example:8041: 4096MB/2vc" in result.output


def test_sync_exits_1_when_a_push_fails(server: RMServer, rm: StandinRM, tmp_path: Path) -> None:
    rm.nodes["nm-0.example:8041"].state = "LOST"
    result = runner.invoke(app, ["yarn", "sync", "--rm", server.url, "--plan", str(plan_file(tmp_path))])
    assert result.exit_code == 1
    assert "LOST" in result.output


def test_bad_rm_url_is_exit_2_naming_the_flag(tmp_path: Path) -> None:
    result = runner.invoke(app, ["yarn", "sync", "--rm", "rm1:8088", "--plan", str(plan_file(tmp_path))])
    assert result.exit_code == 2
    assert "--rm.rm_urls[0]" in result.output and "not an http(s) URL" in result.output


def test_unreachable_rm_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["yarn", "status", "--rm", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "no active ResourceManager" in result.output and "Traceback" not in result.output
