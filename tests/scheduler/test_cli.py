"""``broker plan`` and ``broker bench planner`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from broker.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plan"
ARGS = ["plan", "--inventory", str(EXAMPLES / "inventory.yaml"), "--quota", str(EXAMPLES / "quota.yaml"),
        "--demand", str(EXAMPLES / "demand.yaml"), "--lendable", str(EXAMPLES / "lendable.yaml")]
runner = CliRunner()


def test_plan_prints_the_summary_and_the_explanations() -> None:
    result = runner.invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    assert "Unmet demand" in result.output and "ml-batch" in result.output


def test_plan_json_is_a_plan_document() -> None:
    result = runner.invoke(app, [*ARGS, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert {n["node"] for n in plan["nodes"]} == {"a-1", "a-2", "a-old-1", "b-1", "b-2", "x-1"}
    assert plan["solve"]["objective"] <= plan["solve"]["lp_bound"] + 1e-6


def test_a_bad_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "quota.yaml"
    bad.write_text("teams: {search: {runtime: {cpu: lots}}}\n")
    result = runner.invoke(app, [*ARGS[:3], "--quota", str(bad), *ARGS[5:]])
    assert result.exit_code == 2
    assert "teams.search.runtime" in result.output


def test_a_missing_file_exits_2() -> None:
    result = runner.invoke(app, [*ARGS[:1], "--inventory", "/nonexistent.yaml", *ARGS[3:]])
    assert result.exit_code == 2 and "cannot read file" in result.output


def test_bench_planner_reports_the_comparison_and_a_feasible_plan() -> None:
    result = runner.invoke(app, ["bench", "planner", "--nodes", "200", "--teams", "5", "--classes", "20",
                                 "--repeat", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["feasible"] is True
    assert report["greedy_objective"] <= report["objective"] <= report["lp_bound"] + 1e-6


def test_bench_planner_refuses_fewer_classes_than_teams() -> None:
    result = runner.invoke(app, ["bench", "planner", "--nodes", "10", "--teams", "5", "--classes", "2"])
    assert result.exit_code == 2 and "--classes" in result.output
