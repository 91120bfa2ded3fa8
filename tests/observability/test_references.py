"""The dashboard and the alert rules only query what the service exports: a renamed metric or label fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from .promql import exported, problems, read, series_index

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "broker-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"


def dashboard_queries() -> list[tuple[str, str]]:
    """``(where, expr)`` for every panel target and every query variable of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    out = [(f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"])
           for p in board["panels"] for t in p.get("targets", [])]
    out += [(f"variable {v['name']}", v["definition"]) for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def index_of(registry: CollectorRegistry) -> dict[str, Any]:
    return series_index(exported(registry))


@pytest.mark.parametrize(("where", "expr"), dashboard_queries(), ids=[w for w, _ in dashboard_queries()])
def test_every_dashboard_query_uses_exported_series_and_labels(where: str, expr: str,
                                                               full_registry: CollectorRegistry) -> None:
    assert problems(expr, index_of(full_registry)) == []


@pytest.mark.parametrize("rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])
def test_every_alert_uses_exported_series_and_labels(rule: dict[str, Any], full_registry: CollectorRegistry) -> None:
    assert problems(rule["expr"], index_of(full_registry)) == []


@pytest.mark.parametrize("rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])
def test_alert_annotations_only_name_labels_the_expression_keeps(rule: dict[str, Any]) -> None:
    """``{{ $labels.sink }}`` renders empty unless the expression's aggregation keeps ``sink``."""
    text = " ".join(str(v) for v in rule["annotations"].values())
    named = set(re.findall(r"\$labels\.([a-z_]+)", text))
    assert named <= read(rule["expr"]).grouping


@pytest.mark.parametrize(("expr", "complaint"), [
    ("max(broker_pool_lendabel)", "unknown series broker_pool_lendabel"),
    ("rate(broker_loop_step_seconds_total[5m])", "unknown series broker_loop_step_seconds_total"),
    ("broker_plan_version_total", "unknown series broker_plan_version_total"),
    ('broker_pool_lent{node="n1"}', "broker_pool_lent has no label 'node'"),
    ("sum by (node) (broker_pool_lent)", "grouping label 'node' is on none of the series"),
    ("sum by (le) (broker_pool_lent)", "grouping label 'le' is on none of the series"),
], ids=["misspelt", "histogram-read-as-counter", "gauge-read-as-counter", "unknown-matcher-label",
        "unknown-grouping-label", "le-on-a-gauge"])
def test_the_check_catches_what_a_rename_breaks(expr: str, complaint: str, full_registry: CollectorRegistry) -> None:
    assert any(p.startswith(complaint) for p in problems(expr, index_of(full_registry)))


def test_histogram_and_counter_series_resolve_by_their_type(full_registry: CollectorRegistry) -> None:
    index = index_of(full_registry)
    assert problems("sum by (le, step) (rate(broker_loop_step_seconds_bucket[5m]))", index) == []
    assert problems("rate(broker_loop_step_seconds_sum[5m]) / rate(broker_loop_step_seconds_count[5m])", index) == []
    assert problems("sum by (step) (rate(broker_loop_step_failures_total[5m]))", index) == []


REQUIRED_ON_DASHBOARD = {
    "broker_pool_lendable", "broker_pool_lent", "broker_pool_used", "broker_team_runtime_quota", "broker_team_used",
    "broker_team_borrowed", "broker_team_lent", "broker_planner_solve_seconds_bucket",
    "broker_planner_bound_gap_ratio", "broker_planner_objective", "broker_planner_greedy_objective",
    "broker_loop_step_seconds_bucket", "broker_loop_step_failures_total", "broker_push_seconds_bucket",
    "broker_push_failures_total", "broker_fastpath_shrinks_total", "broker_fastpath_shrink_seconds_bucket",
    "broker_evictions_total", "broker_extender_request_seconds_bucket", "broker_agent_sample_lag_seconds_bucket",
    "broker_agent_lag_max_seconds", "broker_agents_connected", "broker_leader", "broker_plan_age_seconds",
}


def test_the_dashboard_shows_every_figure_the_issue_asks_for() -> None:
    shown = {name for _, expr in dashboard_queries() for name, _ in read(expr).series}
    assert REQUIRED_ON_DASHBOARD - shown == set()
