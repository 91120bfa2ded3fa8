"""Queue capacities via scheduler-conf (validate, PUT, read back); node labels as combined partitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.model import NodePlan, Resources, TeamBinding, TeamPlan
from broker.yarn_bridge import partition_of, queues

from .conftest import OFFLINE, cluster, node, plan, sync, teams
from .standin_rm import CS, RMServer, StandinRM


@pytest.fixture
def rm() -> StandinRM:
    return StandinRM.with_nodes(4, conf=dict(OFFLINE))


def labelled_plan(search_placed: str = "8"):  # type: ignore[no-untyped-def]
    return plan(
        node(0, labels=("disk", "stable")),
        node(1, labels=("diskless", "elastic")),
        teams=teams(search_placed),
    )


def test_team_quota_becomes_absolute_queue_capacities(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, labelled_plan())
    assert report.ok, report.queues.error
    assert rm.conf[f"{CS}root.offline.search.capacity"] == "[memory=16384,vcores=8]"
    assert (
        rm.conf[f"{CS}root.offline.search.maximum-capacity"] == "[memory=65536,vcores=32]"
    )  # capped: cluster
    assert rm.conf[f"{CS}root.offline.queues"] == "search,ads"
    assert rm.conf[f"{CS}root.offline.ads.capacity"] == "[memory=8192,vcores=4]"
    assert report.queues.added == ("root.offline.ads",)


def test_per_label_capacities_sum_to_100_among_managed_siblings(server: RMServer, rm: StandinRM) -> None:
    sync(server.url, labelled_plan())
    assert rm.conf[f"{CS}root.offline.search.accessible-node-labels"] == "disk-stable,diskless-elastic"
    assert rm.conf[f"{CS}root.offline.search.accessible-node-labels.disk-stable.capacity"] == "67"
    assert rm.conf[f"{CS}root.offline.ads.accessible-node-labels.disk-stable.capacity"] == "33"


def test_queue_change_is_validated_then_put_then_read_back(server: RMServer, rm: StandinRM) -> None:
    sync(server.url, labelled_plan())
    calls = [
        (r.method, r.path.removeprefix("/ws/v1/cluster")) for r in rm.requests(path="/ws/v1/cluster/sched")
    ]
    assert calls == [
        ("GET", "/scheduler-conf"),
        ("POST", "/scheduler-conf/validate"),
        ("PUT", "/scheduler-conf"),
        ("GET", "/scheduler-conf"),
    ]


def test_an_invalid_change_is_reported_with_the_rms_reason_and_nothing_applied(
    server: RMServer, rm: StandinRM
) -> None:
    rm.conf[f"{CS}root.offline.capacity"] = "[memory=8192,vcores=4]"  # children no longer fit their parent
    before = dict(rm.conf)
    report = sync(server.url, labelled_plan())
    assert "validation refused" in report.queues.error
    assert "children of root.offline need" in report.queues.error
    assert rm.conf == before and rm.conf_version == 1
    assert rm.requests("PUT") == []


def test_read_back_catches_a_change_the_rm_ignored(
    server: RMServer, rm: StandinRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        queues, "_entries", lambda params: dict(params)
    )  # plain object: RM answers 200, ignores
    report = sync(server.url, plan(node(0), teams=teams()[:1]))
    assert not report.queues.applied
    assert "did not apply" in report.queues.error
    assert report.queues.not_applied[f"{CS}root.offline.search.capacity"] == (
        "[memory=16384,vcores=8]",
        "[memory=65536,vcores=32]",
    )


def test_file_store_gives_a_clear_error(server: RMServer, rm: StandinRM) -> None:
    rm.conf_store = "file"
    report = sync(server.url, plan(node(0), teams=teams()))
    assert "MutableConfScheduler" in report.queues.error
    assert not report.ok


def test_a_repeated_queue_sync_writes_nothing(server: RMServer, rm: StandinRM) -> None:
    assert sync(server.url, labelled_plan()).ok
    rm.clear_log()
    report = sync(server.url, labelled_plan())
    assert rm.writes() == [] and report.queues.drift == {}


def test_drift_is_reported_and_repaired(server: RMServer, rm: StandinRM) -> None:
    sync(server.url, labelled_plan())
    rm.conf[f"{CS}root.offline.search.maximum-capacity"] = "[memory=1,vcores=1]"  # an operator's hand edit
    report = sync(server.url, labelled_plan())
    assert report.queues.drift == {
        f"{CS}root.offline.search.maximum-capacity": ("[memory=1,vcores=1]", "[memory=65536,vcores=32]")
    }
    assert rm.conf[f"{CS}root.offline.search.maximum-capacity"] == "[memory=65536,vcores=32]"


def test_partitions_are_created_non_exclusive_and_assigned(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, labelled_plan())
    assert rm.labels == {"disk-stable": False, "diskless-elastic": False}
    assert rm.nodes["nm-0.example:8041"].label == "disk-stable"
    assert rm.nodes["nm-1.example:8041"].label == "diskless-elastic"
    assert report.labels.created == ("disk-stable", "diskless-elastic")


def test_a_label_with_the_other_exclusivity_is_reported_not_changed(server: RMServer, rm: StandinRM) -> None:
    rm.labels["disk-stable"] = True
    report = sync(server.url, plan(node(0, labels=("disk", "stable"))))
    assert report.labels.exclusivity_conflicts == ("disk-stable",)
    assert rm.labels["disk-stable"] is True


def test_label_writes_by_a_non_admin_are_reported(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, plan(node(0, labels=("disk", "stable"))), user="bob")
    assert "401" in report.labels.error and "not authorized" in report.labels.error
    assert rm.labels == {}


@pytest.mark.parametrize(
    ("labels", "partition"),
    [
        (("disk", "stable"), "disk-stable"),
        (("diskless", "elastic"), "diskless-elastic"),
        (("disk-elastic",), "disk-elastic"),
        (("disk",), None),
        ((), None),
    ],
    ids=str,
)
def test_node_class_maps_to_one_combined_partition(labels: tuple[str, ...], partition: str | None) -> None:
    assert partition_of(labels) == partition


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30))
def test_percent_shares_always_sum_to_exactly_100(weights: list[int]) -> None:
    shares = queues._percent_shares(weights)
    assert sum(shares) == 100 and all(s >= 0 for s in shares)


def test_two_clusters_at_one_site_each_guarantee_only_what_was_placed_on_their_own_nodes() -> None:
    """The guarantee follows the cluster's own placement: a second cluster at the same site does not add to it."""
    search = TeamPlan(team="search", runtime_quota=Resources.of(cpu="40", memory="80Gi"),
                      placed=Resources.of(cpu="12", memory="24Gi"),
                      placed_by_site={"idc-a": Resources.of(cpu="12", memory="24Gi")},
                      placed_by_cluster={"yarn-a": Resources.of(cpu="8", memory="16Gi"),
                                         "yarn-b": Resources.of(cpu="4", memory="8Gi")},
                      binding=TeamBinding(yarn_queues={"yarn-a": ("root.offline.search",),
                                                       "yarn-b": ("root.offline.search",)}))
    both = plan(node(0), NodePlan(node="nm-b.example", site="idc-a", cluster="yarn-b",
                                  yarn=Resources.of(cpu="16", memory="32Gi")), teams=(search,))
    capacity = {name: queues.desired_params(both, cluster("http://rm.example:8088", name=name), [])[
        "root.offline.search"]["capacity"] for name in ("yarn-a", "yarn-b")}
    assert capacity == {"yarn-a": "[memory=16384,vcores=8]", "yarn-b": "[memory=8192,vcores=4]"}
