"""`broker capacity replay`: an estimator over a usage trace, per node and interval; bad flags name themselves."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app


def usage_csv(tmp_path: Path) -> Path:
    path = tmp_path / "usage.csv"
    rows = ["timestamp_s,node,cpu_percent,mem_percent"]
    rows += [f"{t},web-{n},{20 + n},{40}" for t in range(0, 3600, 60) for n in (1, 2)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("estimator", ["online-only", "static", "usage-threshold", "broker"])
def test_replay_writes_one_row_per_node_and_interval(tmp_path: Path, estimator: str) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["capacity", "replay", "--usage", str(usage_csv(tmp_path)), "--estimator",
                                      estimator, "--interval-s", "300", "--out", str(out), "--node-cpu", "10",
                                      "--node-memory", "40Gi"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert {r["node"] for r in rows} == {"web-1", "web-2"}
    assert len(rows) == 2 * 12
    assert all(0 <= int(r["lendable_cpu_milli"]) <= 10_000 for r in rows)
    assert all(int(r["stable_cpu_milli"]) <= int(r["lendable_cpu_milli"]) for r in rows)


def test_usage_threshold_lends_sixty_percent_minus_reserve_minus_usage(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["capacity", "replay", "--usage", str(usage_csv(tmp_path)), "--estimator",
                                      "usage-threshold", "--interval-s", "300", "--out", str(out), "--node-cpu", "10",
                                      "--node-memory", "40Gi", "--reserved-cpu", "1", "--reserved-memory", "1Gi"])
    assert result.exit_code == 0, result.output
    first = next(r for r in read_rows(out) if r["node"] == "web-1")
    assert int(first["lendable_cpu_milli"]) == 10_000 * 60 // 100 - 1000 - 2100  # 21% of 10 cores in use


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--node-cpu", "lots"], "--node-cpu"), (["--node-memory", "-1Gi"], "--node-memory"),
     (["--reserved-cpu", "200"], "--reserved-cpu"), (["--estimator", "magic"], "--estimator")],
    ids=["bad-cpu", "negative-memory", "reserve-above-capacity", "unknown-estimator"],
)
def test_bad_flags_are_named_without_a_traceback(tmp_path: Path, flags: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["capacity", "replay", "--usage", str(usage_csv(tmp_path)), "--out",
                                      str(tmp_path / "o.csv"), *flags])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output
