"""``broker simulate`` end to end on a small scenario: every policy runs, the figures are coherent, files appear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.errors import InputError
from broker.model import parse
from plugins.sim.run import run
from plugins.sim.scenario import Scenario, default_scenario

FIGURES = {
    "avg_cpu_util", "avg_mem_util", "lent_cpu_core_hours", "oracle_lendable_cpu_core_hours", "interference_fraction",
    "offline_containers", "killed_containers", "killed_ams", "offline_wait_p95_s", "reclaimed_containers",
}


def small(**update: object) -> Scenario:
    """The default scenario shrunk to 1/10 of its nodes, two hours measured after half a day of history."""
    data = default_scenario().model_dump()
    data.update({"node_scale": 0.1, "days": 2 / 24, "warmup_days": 0.5})
    data.update(update)
    return Scenario.model_validate(data)


@pytest.fixture(scope="module")
def summary() -> dict[str, dict[str, Any]]:
    return run(small(), None).summary()["policies"]  # type: ignore[no-any-return]


def test_every_policy_reports_every_figure(summary: dict[str, dict[str, Any]]) -> None:
    assert set(summary) == {"online-only", "static", "usage-threshold", "broker"}
    for policy, figures in summary.items():
        assert set(figures) - {"teams", "planner", "links"} == FIGURES, policy
    assert {"planner", "links"} <= set(summary["broker"])
    assert all("planner" not in summary[p] for p in ("online-only", "static", "usage-threshold"))


def test_only_the_broker_shares_its_pool_by_quota(summary: dict[str, dict[str, Any]]) -> None:
    assert set(summary["broker"]["teams"]) == {"search", "ads", "recommend", "risk", "bi", "ml"}
    assert all("teams" not in summary[p] for p in ("online-only", "static", "usage-threshold"))
    assert all(summary[p]["reclaimed_containers"] == 0 for p in ("online-only", "static", "usage-threshold"))


def test_team_figures_are_coherent(summary: dict[str, dict[str, Any]]) -> None:
    for team, figures in summary["broker"]["teams"].items():
        assert 0.0 <= figures["guarantee_met"] <= 1.0, team
        assert figures["borrowed_core_hours"] >= 0 and figures["lent_core_hours"] >= 0, team
        assert figures["reclaimed_containers"] >= 0, team


def test_a_team_that_is_not_a_quota_leaf_is_refused() -> None:
    data = default_scenario().model_dump()
    data["teams"] = [*data["teams"], {"name": "ghost", "share": 1.0}]
    with pytest.raises(InputError) as caught:
        parse(Scenario, data)
    assert caught.value.field == "teams[6].name"


def test_online_only_lends_nothing_and_runs_nothing(summary: dict[str, dict[str, Any]]) -> None:
    online = summary["online-only"]
    assert online["lent_cpu_core_hours"] == 0
    assert online["offline_containers"] == 0
    assert online["interference_fraction"] == 0


def test_lending_raises_utilisation_above_online_only(summary: dict[str, dict[str, Any]]) -> None:
    for policy in ("static", "usage-threshold", "broker"):
        assert summary[policy]["avg_cpu_util"] > summary["online-only"]["avg_cpu_util"]


def test_the_oracle_is_the_same_for_every_policy_and_bounds_the_safe_lenders(
        summary: dict[str, dict[str, Any]]) -> None:
    oracles = {figures["oracle_lendable_cpu_core_hours"] for figures in summary.values()}
    assert len(oracles) == 1
    oracle = oracles.pop()
    assert 0 < summary["usage-threshold"]["lent_cpu_core_hours"] <= oracle
    assert 0 < summary["broker"]["lent_cpu_core_hours"] <= oracle


def test_broker_lends_more_than_usage_threshold(summary: dict[str, dict[str, Any]]) -> None:
    assert summary["broker"]["lent_cpu_core_hours"] > summary["usage-threshold"]["lent_cpu_core_hours"]


def test_broker_never_kills_an_application_master(summary: dict[str, dict[str, Any]]) -> None:
    assert summary["broker"]["killed_ams"] == 0


def test_same_scenario_same_figures() -> None:
    scenario = small(days=0.5 / 24, policies=("usage-threshold", "broker"))
    assert _without_timing(run(scenario, None).summary()) == _without_timing(run(scenario, None).summary())


def _without_timing(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the planner's solve times (wall-clock measurements, not simulated figures)."""
    planner = summary["policies"]["broker"]["planner"]
    for key in ("solve_seconds_median", "solve_seconds_p95", "solve_seconds_max"):
        assert planner.pop(key) > 0
    return summary


def test_cli_writes_json_and_report(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    data = small(days=0.5 / 24).model_dump(mode="json")
    import yaml

    scenario.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out.json"
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["simulate", str(scenario), "--quiet", "--output-json", str(out),
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document["policies"]["broker"]) - {"teams", "planner", "links"} == FIGURES
    assert (report / "summary.json").exists()
    assert (report / "utilisation.png").stat().st_size > 1000
    assert (report / "site-idc-a.png").exists()
    assert (report / "teams-broker.png").stat().st_size > 1000
    assert (report / "links-broker.png").stat().st_size > 1000
    assert set(json.loads((report / "summary.json").read_text())["link_series"]["broker"]) == {
        "t_s", "idc-a<->idc-b", "idc-a<->cloud-1", "idc-b<->cloud-1"}
    assert set(json.loads((report / "summary.json").read_text())["team_series"]["broker"]) >= {"t_s", "search"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-scenario"], "neither a scenario file nor a built-in"),
        (["--policies", "greedy"], "--policies"),
        (["missing.yaml"], "cannot read file"),
    ],
    ids=["unknown-builtin", "unknown-policy", "missing-file"],
)
def test_bad_input_is_a_clear_error_not_a_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--quiet", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_scenario_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsites:\n  - name: a\n    node_groups:\n      - {count: 2, capacity: {cpu: lots}}\n")
    result = CliRunner().invoke(app, ["simulate", "--quiet", str(path)])
    assert result.exit_code == 2
    assert "sites[0].node_groups[0].capacity.cpu" in result.output
