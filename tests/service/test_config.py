"""`broker serve --config`: defaults that run on a laptop, the environment overriding the file, and errors that
name the field and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.errors import InputError
from broker.service.control.config import LeaderKind, UsageKind, load_service_config


def test_no_file_and_no_environment_is_the_embedded_default() -> None:
    config = load_service_config(None, {})
    assert config.store is None
    assert config.leader.kind is LeaderKind.NONE
    assert config.fleet.usage is UsageKind.SIMULATED
    assert config.interval_s == 10.0
    assert config.plan_max_age_s == 30.0


def test_environment_overrides_the_file_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("interval_s: 20\nhttp: {host: 0.0.0.0, port: 9000}\n")
    config = load_service_config(path, {"BROKER_HTTP__PORT": "9100", "BROKER_INTERVAL_S": "5"})
    assert config.interval_s == 5.0
    assert config.http.port == 9100
    assert config.http.host == "0.0.0.0"


def test_relative_paths_are_read_from_the_files_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "broker.yaml"
    path.parent.mkdir()
    path.write_text("policy: quota.yaml\n")
    assert load_service_config(path, {}).policy == tmp_path / "conf" / "quota.yaml"


@pytest.mark.parametrize(("text", "env", "field"), [
    ("interval_s: 0\n", {}, "interval_s"),
    ("", {"BROKER_HTTP__PORT": "70000"}, "http.port"),
    ("", {"BROKER_INTERVL_S": "5"}, "intervl_s"),
    ("leader: {kind: redis}\n", {}, "leader.kind"),
    ("leader: {kind: redis, ttl_s: 4, renew_s: 3}\nstore: redis://127.0.0.1:1/0\n", {}, "leader.renew_s"),
    ("agents: {listen: '127.0.0.1:7070'}\n", {}, "agents.token_file"),
    ("fleet: {usage: agents}\n", {}, "fleet.inventory"),
    ("sinks: {kubernetes: true}\n", {}, "sinks.kubernetes"),
    ("demand: {kind: file}\n", {}, "demand.file"),
    ("http: {tls_cert: cert.pem}\n", {}, "http.tls_key"),
    ("agents: {listen: '127.0.0.1:7070', token_file: t, tls_key: k.pem}\n", {}, "agents.tls_cert"),
    ("fleet: {inventory: inventory.yaml, usage: simulated}\n", {}, "fleet.usage"),
    ("log: {level: loud}\n", {}, "log.level"),
])
def test_a_bad_value_names_its_field(tmp_path: Path, text: str, env: dict[str, str], field: str) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_service_config(path, env)
    where = f"{path} with BROKER_* overrides" if env else str(path)
    assert caught.value.field == f"{where}.{field}"  # exactly: a section's own check does not repeat its name


def test_serve_check_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("interval_s: fast\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(path), "--check"])
    assert result.exit_code == 2
    assert "interval_s" in result.output
    assert "Traceback" not in result.output


def test_serve_check_prints_the_effective_configuration(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--check"], env={"BROKER_INTERVAL_S": "7"})
    assert result.exit_code == 0, result.output
    assert '"interval_s": 7.0' in result.output


def test_serve_check_names_an_unreadable_agents_token_file(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(f"agents: {{listen: '127.0.0.1:0', token_file: {tmp_path / 'missing'}}}\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(path), "--check"])
    assert result.exit_code == 2
    assert "agents.token_file" in result.output and "Traceback" not in result.output
