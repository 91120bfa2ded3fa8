"""Pure pieces: YARN units and rounding, anti-churn, configuration, node-id mapping, dynamic-resources.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InputError
from broker.model import Resources
from broker.yarn_bridge import Change, NodeIdMap, YarnResource, annotated_node_ids, classify, load_config
from broker.yarn_bridge.dynamic_resources import render
from broker.yarn_bridge.nodes import NodeTarget
from broker.yarn_bridge.wire import RMNode

CONTRACT = Path("/work/shared/contracts/yarn-rm/dynamic-resources.constructed.xml")


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_conversion_never_lends_a_fraction_of_a_core(cpu_milli: int, memory_mib: int) -> None:
    y = YarnResource.from_resources(Resources.exact(cpu_milli=cpu_milli, memory_mib=memory_mib))
    assert y.vcores * 1000 <= cpu_milli < (y.vcores + 1) * 1000
    assert y.memory_mb == memory_mib


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10_000),
)
def test_any_shrink_is_always_pushed(m1: int, v1: int, m2: int, v2: int, permille: int) -> None:
    want, have = YarnResource(m1, v1), YarnResource(m2, v2)
    if m1 < m2 or v1 < v2:
        assert classify(want, have, permille) is Change.SHRINK


@pytest.mark.parametrize(
    ("have", "want", "change"),
    [
        ((1000, 10), (1099, 10), Change.HELD),
        ((1000, 10), (1100, 10), Change.GROW),
        ((1000, 10), (1000, 11), Change.GROW),
        ((0, 0), (1, 0), Change.GROW),
        ((1000, 10), (1000, 10), Change.SAME),
    ],
    ids=str,
)
def test_anti_churn_threshold_of_10_percent(
    have: tuple[int, int], want: tuple[int, int], change: Change
) -> None:
    assert classify(YarnResource(*want), YarnResource(*have), 100) is change


def test_config_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "yarn.yaml"
    path.write_text(
        "clusters:\n- name: yarn-a\n  site: idc-a\n  rm_urls: [http://rm1:8088/, http://rm2:8088]\n"
        "  team_queues: {search: [root.offline.search]}\n  node_ids: {k8s-1: 'nm-1:45454'}\n"
    )
    config = load_config(path)
    assert config.cluster("yarn-a").rm_urls == ("http://rm1:8088", "http://rm2:8088")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("rm_urls: [rm1:8088]", "clusters[0].rm_urls[0]"),
        ("rm_urls: [http://a]\n  team_queues: {x: [offline.x]}", "clusters[0].team_queues.x"),
        ("rm_urls: [http://a]\n  node_ids: {k8s-1: nm-1}", "clusters[0].node_ids.k8s-1"),
        ("rm_urls: []", "clusters[0].rm_urls"),
    ],
    ids=["url", "queue-path", "node-id", "no-rm"],
)
def test_bad_config_names_the_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "yarn.yaml"
    path.write_text(f"clusters:\n- name: yarn-a\n  {body}\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.field == f"{path}: {field}"


def test_node_ids_from_configuration_name_or_unique_host() -> None:
    rm_nodes = [
        RMNode(id=i, host=i.split(":")[0], state="RUNNING", total=YarnResource(0, 0), labels=())
        for i in ("a:1", "b:1", "c:1", "c:2")
    ]
    ids = NodeIdMap.resolve(["x", "a:1", "b", "c", "d"], {"x": "a:1"}, rm_nodes)
    assert ids.to_yarn == {"x": "a:1", "a:1": "a:1", "b": "b:1"}
    assert "2 NodeManagers on host c" in ids.unmapped["c"] and "d" in ids.unmapped


def test_annotations_give_node_ids() -> None:
    pods = [("k8s-1", {"yarn.broker.io/node-id": "nm-1:45454"}), ("k8s-2", {"other": "x"})]
    assert annotated_node_ids(pods) == {"k8s-1": "nm-1:45454"}


def test_dynamic_resources_xml_has_the_contracts_shape() -> None:
    targets = [
        NodeTarget(
            node=n,
            node_id=f"{n}:1234",
            want=YarnResource(mb, vc),
            have=YarnResource(0, 0),
            change=Change.GROW,
        )
        for n, mb, vc in (("h2", 4096, 4), ("h1", 8192, 8))
    ]
    ours = {
        p.findtext("name"): p.findtext("value") for p in ET.fromstring(render(targets, -1)).iter("property")
    }
    theirs = {
        p.findtext("name"): p.findtext("value").strip()  # type: ignore[union-attr]
        for p in ET.parse(CONTRACT).getroot().iter("property")
    }
    assert set(theirs) <= set(ours)
    assert {k: ours[k] for k in theirs} == theirs
