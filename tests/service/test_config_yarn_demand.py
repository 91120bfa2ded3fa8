"""``demand.kind: yarn`` in the service configuration: the cluster file comes from ``demand.yarn`` or, unset, from
``sinks.yarn`` (no need to repeat it); a configuration that cannot work is an error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from broker.cli.main import app
from broker.errors import InputError
from broker.service.control.config import DemandKind, load_service_config
from broker.service.control.service import build

REAL_FLEET = """\
fleet: {inventory: inventory.yaml, usage: agents}
agents: {listen: '127.0.0.1:0', token_file: token}
"""


def files(tmp_path: Path, text: str) -> Path:
    """``broker.yaml`` (a real fleet plus ``text``) beside the inventory, the agents' token and a YARN cluster
    file naming ``yarn-a`` and ``yarn-b``."""
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
        "sites": [{"name": "idc-a"}],
        "clusters": [{"name": name, "kind": "yarn", "site": "idc-a"} for name in ("yarn-a", "yarn-b")],
        "nodes": [{"name": f"n-{name}", "site": "idc-a", "cluster": name, "capacity": {"cpu": 8, "memory": "16Gi"}}
                  for name in ("yarn-a", "yarn-b")]}))
    (tmp_path / "token").write_text("token-for-tests")
    (tmp_path / "yarn.yaml").write_text(yaml.safe_dump({"clusters": [
        {"name": name, "rm_urls": [f"http://rm.{name}:8088"]} for name in ("yarn-a", "yarn-b")]}))
    path = tmp_path / "broker.yaml"
    path.write_text(REAL_FLEET + text)
    return path


def test_kind_yarn_reads_the_cluster_file_of_the_yarn_sink_when_demand_yarn_is_not_set(tmp_path: Path) -> None:
    config = load_service_config(files(tmp_path, "demand: {kind: yarn}\nsinks: {yarn: yarn.yaml}\n"), {})
    assert config.demand.kind is DemandKind.YARN
    assert config.demand_yarn_file == tmp_path / "yarn.yaml"
    replica = build(config, {})
    assert replica.yarn_demand is not None and set(replica.yarn_demand.status()) == {"yarn-a", "yarn-b"}


def test_demand_yarn_is_its_own_file_relative_to_the_config(tmp_path: Path) -> None:
    """Reading demand without pushing: demand.yarn alone, no sinks.yarn."""
    config = load_service_config(files(tmp_path, "demand: {kind: yarn, yarn: yarn.yaml}\n"), {})
    assert config.sinks.yarn is None
    assert config.demand_yarn_file == tmp_path / "yarn.yaml"


def test_the_environment_selects_yarn_demand_and_its_limits(tmp_path: Path) -> None:
    env = {"BROKER_DEMAND__KIND": "yarn", "BROKER_DEMAND__YARN": str(tmp_path / "yarn.yaml"),
           "BROKER_DEMAND__TIMEOUT_S": "2", "BROKER_DEMAND__MAX_AGE_S": "45"}
    config = load_service_config(files(tmp_path, ""), env)
    assert (config.demand.kind, config.demand.timeout_s, config.demand_max_age_s) == (DemandKind.YARN, 2.0, 45.0)


def test_the_last_good_demand_is_used_for_three_intervals_by_default(tmp_path: Path) -> None:
    config = load_service_config(files(tmp_path, "interval_s: 10\ndemand: {kind: yarn, yarn: yarn.yaml}\n"), {})
    assert (config.demand.timeout_s, config.demand_max_age_s) == (5.0, 30.0)


@pytest.mark.parametrize(("text", "field"), [
    ("demand: {kind: yarn}\n", "demand.yarn"),
    ("demand: {kind: file, file: demand.yaml, yarn: yarn.yaml}\n", "demand.yarn"),
    ("demand: {kind: yarn, yarn: yarn.yaml, timeout_s: 0}\n", "demand.timeout_s"),
    ("demand: {kind: yarn, yarn: yarn.yaml, max_age_s: -1}\n", "demand.max_age_s"),
], ids=["no-cluster-file", "yarn-file-with-kind-file", "zero-timeout", "negative-max-age"])
def test_a_yarn_demand_that_cannot_work_names_its_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        load_service_config(files(tmp_path, text), {})
    assert field in str(caught.value)


def test_yarn_demand_needs_a_real_fleet(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("demand: {kind: yarn}\nsinks: {yarn: yarn.yaml}\n")
    with pytest.raises(InputError) as caught:
        load_service_config(path, {})
    assert caught.value.field.endswith("demand.kind")


def test_serve_check_names_a_missing_cluster_file_without_a_traceback(tmp_path: Path) -> None:
    path = files(tmp_path, "demand: {kind: yarn, yarn: missing.yaml}\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(path), "--check"])
    assert result.exit_code == 2
    assert "missing.yaml" in result.output
    assert "Traceback" not in result.output
