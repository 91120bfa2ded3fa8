"""Choosing the store: a Redis URL (``--store`` or ``$BROKER_STORE``) selects Redis, anything else a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.errors import InputError
from broker.store import FileStore, RedisStore, is_redis_url, open_store
from tests.redis_server import RedisServer

EXAMPLES = Path(__file__).parents[2] / "examples" / "quota"


@pytest.mark.parametrize(("location", "redis"), [
    ("redis://127.0.0.1:6379/0", True),
    ("rediss://cache.internal:6380/1", True),
    ("unix:///run/redis.sock?db=0", True),
    ("/var/lib/broker/store.json", False),
    ("store.json", False),
    ("C:/broker/store.json", False),
], ids=["redis", "rediss", "unix-socket", "absolute-path", "relative-path", "drive-letter"])
def test_the_url_scheme_decides(location: str, redis: bool) -> None:
    assert is_redis_url(location) is redis


def test_the_file_store_stays_the_default(tmp_path: Path) -> None:
    chosen = open_store(None, {"XDG_STATE_HOME": str(tmp_path)})
    assert isinstance(chosen, FileStore) and chosen.path == tmp_path / "broker" / "store.json"


def test_a_path_flag_opens_that_file(tmp_path: Path) -> None:
    chosen = open_store(str(tmp_path / "s.json"), {"BROKER_STORE": "redis://127.0.0.1:1/0"})
    assert isinstance(chosen, FileStore) and chosen.path == tmp_path / "s.json"


def test_a_redis_url_in_the_environment_opens_redis(redis_server: RedisServer) -> None:
    chosen = open_store(None, {"BROKER_STORE": redis_server.url})
    assert isinstance(chosen, RedisStore)
    chosen.close()


@pytest.mark.parametrize(("flag", "env", "field"), [
    ("redis://127.0.0.1:6379/0?audit_max=no", None, "--store"),
    (None, "redis://127.0.0.1:6379/0?audit_max=no", "BROKER_STORE"),
], ids=["flag", "environment"])
def test_a_bad_redis_url_names_where_it_came_from(flag: str | None, env: str | None, field: str) -> None:
    with pytest.raises(InputError) as caught:
        open_store(flag, {"BROKER_STORE": env} if env else {})
    assert caught.value.field == field and "audit_max" in caught.value.message


def test_the_quota_cli_applies_and_lists_history_in_redis(redis_server: RedisServer) -> None:
    runner = CliRunner()
    store = ["--store", redis_server.url]
    applied = runner.invoke(app, ["quota", "apply", str(EXAMPLES / "policy.yaml"), "--author", "alice",
                                  *store])
    assert applied.exit_code == 0, applied.output
    listed = runner.invoke(app, ["quota", "history", "--json", *store])
    assert [(v["version"], v["author"]) for v in json.loads(listed.output)] == [(1, "alice")]
    with redis_server.client() as raw:
        assert raw.llen("{broker}:policy:log") == 1


def test_the_quota_cli_reports_a_redis_outage_without_a_traceback(redis_server: RedisServer) -> None:
    redis_server.kill()
    result = CliRunner().invoke(app, ["quota", "show", "--store", redis_server.url])
    assert result.exit_code == 1 and "error: redis: " in result.output and "Traceback" not in result.output


def test_the_quota_cli_names_a_bad_store_url() -> None:
    result = CliRunner().invoke(app, ["quota", "show", "--store", "redis://127.0.0.1:6379/0?replicas=x"])
    assert result.exit_code == 2 and "--store" in result.output and "replicas" in result.output
