"""The Grafana dashboard imports and the alert rules load: the structure each tool checks on import."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from .test_references import ALERTS, DASHBOARD, ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def board() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/operations.md (lower case, spaces to dashes, punctuation gone)."""
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in headings}


# --- dashboard ---------------------------------------------------------------------------------------------


def test_dashboard_is_a_current_schema_with_a_prometheus_datasource_variable_and_a_team_variable() -> None:
    dashboard = board()
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["team"]["type"] == "query"
    assert variables["team"]["datasource"] == DATASOURCE
    assert variables["team"]["multi"] and variables["team"]["includeAll"]


def test_dashboard_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in board()["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_and_target_queries_the_datasource_variable() -> None:
    for panel in board()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])
            assert target["expr"].strip()


def test_dashboard_panels_do_not_overlap_and_fit_the_grid() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in board()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_team_panels_follow_the_team_variable() -> None:
    for panel in board()["panels"]:
        for target in panel.get("targets", []):
            if "broker_team_" in target["expr"]:
                assert 'team=~"$team"' in target["expr"], panel["title"]


# --- alerts --------------------------------------------------------------------------------------------------

REQUIRED_ALERTS = {
    "BrokerNoLeader", "BrokerTwoLeaders", "BrokerPlanStale", "BrokerLoopStepFailing", "BrokerPushFailing",
    "BrokerShrinkSlow", "BrokerAgentLagHigh", "BrokerAgentsDisconnected", "BrokerExtenderSlow",
    "BrokerExtenderErrors", "BrokerPlannerGapHigh", "BrokerStoreErrors",
}


def test_rule_file_has_named_groups_of_rules() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = [g["name"] for g in document["groups"]]
    assert len(names) == len(set(names))
    assert all(g["rules"] for g in document["groups"])


def test_every_alert_the_issue_asks_for_is_there_once() -> None:
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", rules(), ids=[r["alert"] for r in rules()])
def test_each_alert_has_a_duration_a_severity_and_its_annotations(rule: dict[str, Any]) -> None:
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
    assert _DURATION.match(rule["for"])
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    assert all(str(v).strip() for v in rule["annotations"].values())


@pytest.mark.parametrize("rule", rules(), ids=[r["alert"] for r in rules()])
def test_each_alert_links_to_its_runbook_section(rule: dict[str, Any]) -> None:
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert path == "docs/operations.md"
    assert anchor == rule["alert"].lower()
    assert anchor in anchors()


def test_the_anchor_reader_follows_githubs_rules() -> None:
    assert {"brokernoleader", "metrics", "log-format"} <= anchors()
