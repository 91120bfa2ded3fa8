"""``broker quota``: every command end to end on a file store, and exit code 2 with the field on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "quota"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROKER_STORE", str(tmp_path / "store.json"))
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["quota", *args])
        return result.exit_code, result.output

    return invoke


def test_validate_accepts_the_example(run) -> None:  # type: ignore[no-untyped-def]
    path = EXAMPLES / "policy.yaml"
    assert run("validate", str(path)) == (0, f"{path}: valid (8 groups, 6 leaves)\n")


def test_validate_exits_2_naming_group_and_field(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - {name: a, min: {cpu: '5'}, max: {cpu: '4'}}\n")
    code, output = run("validate", str(bad))
    assert code == 2 and "groups[a].min.cpu" in output and "above max" in output


def test_apply_show_history_rollback(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("apply", str(EXAMPLES / "policy.yaml"), "--author", "alice")[0] == 0
    assert run("apply", str(EXAMPLES / "policy-cr.yaml"), "--author", "bob")[0] == 0
    code, output = run("show", "--json")
    assert code == 0 and json.loads(output)["version"] == 2 and json.loads(output)["author"] == "bob"
    code, output = run("history", "--json")
    assert [v["version"] for v in json.loads(output)] == [2, 1]
    assert run("rollback", "1", "--author", "carol")[0] == 0
    shown = json.loads(run("show", "--json")[1])
    assert (shown["version"], shown["action"], shown["rollback_of"]) == (3, "rollback", 1)


def test_apply_dry_run_writes_nothing(run) -> None:  # type: ignore[no-untyped-def]
    code, output = run("apply", str(EXAMPLES / "policy.yaml"), "--dry-run", "--json", "--pool", "cpu=500",
                       "--demand", str(EXAMPLES / "demand.yaml"))
    assert code == 0 and json.loads(output)["runtime"]["etl"]["after"]["runtime"]["cpu_milli"] > 0
    assert run("show")[0] == 2


def test_simulate_prints_runtime_borrowed_and_lent_keyed_by_group(run) -> None:  # type: ignore[no-untyped-def]
    code, output = run("simulate", str(EXAMPLES / "policy.yaml"), "--pool", "cpu=500,memory=2000Gi,gpu=16",
                       "--demand", str(EXAMPLES / "demand.yaml"), "--json")
    groups = json.loads(output)["groups"]
    assert code == 0 and set(groups) == {"data", "etl", "reporting", "adhoc", "ml", "training", "features",
                                         "search"}
    assert groups["reporting"]["lent"]["cpu_milli"] == 25_000
    assert sum(groups[g]["runtime"]["cpu_milli"] for g in ("data", "ml", "search")) <= 500_000


@pytest.mark.parametrize(("pool", "field"), [("cpu", "--pool"), ("cpu=lots", "--pool.cpu"), ("gpus=1",
                                                                                             "--pool")])
def test_a_bad_pool_flag_exits_2_naming_it(run, pool: str,
                                           field: str) -> None:  # type: ignore[no-untyped-def]
    code, output = run("simulate", str(EXAMPLES / "policy.yaml"), "--pool", pool, "--demand",
                       str(EXAMPLES / "demand.yaml"))
    assert code == 2 and field in output


def test_rollback_to_a_missing_version_exits_2(run) -> None:  # type: ignore[no-untyped-def]
    code, output = run("rollback", "4")
    assert code == 2 and "no version 4" in output
