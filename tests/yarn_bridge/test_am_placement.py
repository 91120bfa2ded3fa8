"""AM placement: each team's queues get ``default-node-label-expression`` = one stable partition, pushed with
the queue change (validate, PUT, read back), refused by the RM when the queue cannot access the label."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.model import NodePlan, Placement, Plan, Resources, Sink
from broker.yarn_bridge import RMClient
from broker.yarn_bridge.am_placement import am_labels
from broker.yarn_bridge.labels import partition_of
from broker.yarn_bridge.queues import CS, DEFAULT_LABEL, QueueReport, apply_queue_change, queue_change

from .conftest import OFFLINE, cluster, node, plan, run, sync, teams
from .standin_rm import RMServer, StandinRM

SEARCH_AM = f"{CS}root.offline.search.{DEFAULT_LABEL}"
ADS_AM = f"{CS}root.offline.ads.{DEFAULT_LABEL}"


@pytest.fixture
def rm() -> StandinRM:
    return StandinRM.with_nodes(4, conf=dict(OFFLINE))


def placed(n: NodePlan, team: str, count: int, is_am: bool = False) -> NodePlan:
    extra = Placement(demand_class=f"{team}-c", team=team, sink=Sink.YARN, is_am=is_am, count=count)
    return n.model_copy(update={"placements": (*n.placements, extra)})


def three_classes(*extra: tuple[int, str, int, bool]) -> Plan:
    """nm-0 disk-stable (small), nm-1 diskless-stable (large), nm-2 diskless-elastic; placements per
    ``(node index, team, count, is_am)``."""
    nodes = [
        node(0, memory="16Gi", labels=("disk", "stable")),
        node(1, memory="48Gi", labels=("diskless", "stable")),
        node(2, labels=("diskless", "elastic")),
    ]
    for index, who, count, is_am in extra:
        nodes[index] = placed(nodes[index], who, count, is_am)
    return plan(*nodes, teams=teams())


def chosen(the_plan: Plan) -> dict[str, str]:
    mine = list(the_plan.nodes)
    return {t: a.partition for t, a in am_labels(the_plan, mine, lambda n: partition_of(n.labels)).items()}


def test_a_team_s_ams_go_where_the_plan_placed_most_of_them() -> None:
    the_plan = three_classes((0, "search", 3, True), (1, "search", 1, True), (1, "ads", 2, True))
    assert chosen(the_plan) == {"search": "disk-stable", "ads": "diskless-stable"}


def test_a_shuffle_heavy_team_without_planned_ams_prefers_disk_stable() -> None:
    the_plan = three_classes((0, "search", 5, False), (2, "search", 1, False))
    assert chosen(the_plan) == {"search": "disk-stable", "ads": "diskless-stable"}  # ads: most memory


def test_elastic_partitions_are_never_chosen() -> None:
    the_plan = plan(node(0, labels=("disk", "elastic")), node(1, labels=("diskless", "elastic")), teams=teams())
    assert chosen(the_plan) == {}


def test_sync_sets_the_queue_default_label_and_reads_it_back(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, three_classes((1, "search", 2, True)))
    assert report.ok, report.queues.error
    assert rm.conf[SEARCH_AM] == "diskless-stable" and rm.conf[ADS_AM] == "diskless-stable"
    assert report.queues.applied and report.queues.drift[SEARCH_AM] == ("", "diskless-stable")
    assert report.queues.am_labels["root.offline.search"].reason == "2 AM container(s) planned there"
    puts = rm.requests("PUT", "/ws/v1/cluster/scheduler-conf")
    assert len(puts) == 1 and DEFAULT_LABEL.encode() in puts[0].body


def test_a_changed_plan_moves_the_am_label(server: RMServer, rm: StandinRM) -> None:
    sync(server.url, three_classes((1, "search", 2, True)))
    report = sync(server.url, three_classes((0, "search", 4, True)))
    assert report.queues.drift == {SEARCH_AM: ("diskless-stable", "disk-stable")}
    assert rm.conf[SEARCH_AM] == "disk-stable"


def test_a_repeated_sync_sends_no_am_label_write(server: RMServer, rm: StandinRM) -> None:
    assert sync(server.url, three_classes((1, "search", 2, True))).ok
    rm.clear_log()
    report = sync(server.url, three_classes((1, "search", 2, True)))
    assert rm.writes() == [] and report.queues.drift == {}
    assert report.queues.am_labels["root.offline.search"].partition == "diskless-stable"


def test_am_placement_off_leaves_the_parameter_alone(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, three_classes((1, "search", 2, True)), am_placement="off")
    assert report.ok and report.queues.am_labels == {}
    assert SEARCH_AM not in rm.conf


def test_the_rm_refuses_a_default_label_the_queue_cannot_access(server: RMServer, rm: StandinRM) -> None:
    rm.labels.update({"disk-stable": False, "diskless-stable": False})
    rm.conf[f"{CS}root.offline.search.accessible-node-labels"] = "disk-stable"
    before = dict(rm.conf)
    body, report = queue_change({"root.offline.search": {DEFAULT_LABEL: "diskless-stable"}}, rm.conf)
    assert body is not None

    async def go() -> QueueReport:
        async with RMClient(cluster(server.url)) as client:
            return await apply_queue_change(client, body, report)

    refused = run(go())
    assert refused.error.startswith("validation refused: POST /scheduler-conf/validate: 400")
    assert "doesn't have permission to access all labels" in refused.error
    assert rm.conf == before and rm.requests("PUT") == []


def test_the_rm_refuses_a_default_label_the_cluster_does_not_have(server: RMServer, rm: StandinRM) -> None:
    rm.conf[f"{CS}root.offline.search.accessible-node-labels"] = "*"
    body, report = queue_change({"root.offline.search": {DEFAULT_LABEL: "gpu-stable"}}, rm.conf)
    assert body is not None

    async def go() -> QueueReport:
        async with RMClient(cluster(server.url)) as client:
            return await apply_queue_change(client, body, report)

    assert "NodeLabelManager doesn't include label = gpu-stable" in run(go()).error
    assert SEARCH_AM not in rm.conf


def test_dry_run_shows_the_am_label_it_would_set(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, three_classes((1, "search", 2, True)), dry_run=True)
    assert report.queues.drift[SEARCH_AM] == ("", "diskless-stable")
    assert SEARCH_AM not in rm.conf


def test_memory_breaks_a_tie_between_stable_partitions() -> None:
    nodes = (
        node(0, memory="8Gi", labels=("disk", "stable")),
        node(1, memory="8Gi", labels=("diskless", "stable")),
    )
    the_plan = plan(*nodes, teams=teams())
    labels = am_labels(the_plan, list(nodes), lambda n: partition_of(n.labels))
    assert labels["ads"].partition == "disk-stable" and labels["ads"].reason == "tie: disk-stable first"
    heavier = plan(nodes[0], nodes[1].model_copy(update={"yarn": Resources.of(cpu="16", memory="9Gi")}))
    assert chosen(heavier.model_copy(update={"teams": teams()}))["ads"] == "diskless-stable"


def test_cli_sync_reports_the_am_label_it_set(server: RMServer, rm: StandinRM, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(orjson.dumps(three_classes((0, "search", 2, True)).model_dump(mode="json")))
    args = ["yarn", "sync", "--rm", server.url, "--plan", str(plan_file)]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert "AM label root.offline.search: disk-stable (default-node-label-expression, would set;" in dry.output
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "AM label root.offline.search: disk-stable (default-node-label-expression, set, read back; "
        "2 AM container(s) planned there)" in result.output
    )
    again = CliRunner().invoke(app, args)
    assert "AM label root.offline.search: disk-stable (default-node-label-expression, already set;" in again.output
