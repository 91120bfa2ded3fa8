"""Inventory is validated as a whole: names unique, references resolve, reserves fit."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import InputError
from broker.model import Inventory, Node, Resources, parse


def node(name: str = "n1", site: str = "idc-a", cluster: str = "k1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "site": site, "cluster": cluster, "capacity": {"cpu": "8", "memory": "32Gi"}} | extra


def document(nodes: list[dict[str, Any]] | None = None, links: list[dict[str, Any]] | None = None,
             clusters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "sites": [{"name": "idc-a"}, {"name": "idc-b"}, {"name": "cloud-1", "kind": "cloud"}],
        "clusters": clusters if clusters is not None else [{"name": "k1", "site": "idc-a"},
                                                           {"name": "k2", "site": "idc-b", "kind": "yarn"}],
        "links": links or [],
        "nodes": nodes if nodes is not None else [node()],
    }


def error_of(doc: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as caught:
        parse(Inventory, doc)
    return caught.value


def test_a_consistent_inventory_is_accepted() -> None:
    inv = parse(Inventory, document(links=[{"a": "idc-a", "b": "idc-b", "capacity_mbps": 1000}]))
    assert inv.site("idc-b").name == "idc-b"
    assert inv.link("idc-b", "idc-a") is not None
    assert inv.link("idc-a", "cloud-1") is None


def test_unknown_site_of_a_node_is_named() -> None:
    err = error_of(document([node(), node("n2", site="idc-z")]))
    assert err.field == "nodes[1].site"
    assert "idc-z" in err.message


def test_unknown_cluster_of_a_node_is_named() -> None:
    assert error_of(document([node(cluster="k9")])).field == "nodes[0].cluster"


def test_unknown_site_of_a_cluster_is_named() -> None:
    assert error_of(document(clusters=[{"name": "k1", "site": "mars"}])).field == "clusters[0].site"


def test_a_node_in_a_cluster_at_another_site_is_refused() -> None:
    err = error_of(document([node(site="idc-b", cluster="k1")]))
    assert err.field == "nodes[0].cluster"
    assert "idc-a" in err.message


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        pytest.param(document([node("n1"), node("n1")]), "nodes[1].name", id="nodes"),
        pytest.param(document(clusters=[{"name": "k1", "site": "idc-a"}, {"name": "k1", "site": "idc-b"}]),
                     "clusters[1].name", id="clusters"),
        pytest.param({"sites": [{"name": "s"}, {"name": "s"}]}, "sites[1].name", id="sites"),
    ],
)
def test_duplicate_names_are_refused(doc: dict[str, Any], field: str) -> None:
    err = error_of(doc)
    assert err.field == field
    assert "duplicate" in err.message


def test_reserved_above_capacity_is_refused() -> None:
    err = error_of(document([node(reserved={"cpu": "9"})]))
    assert err.field == "nodes[0].reserved"


def test_a_second_link_between_the_same_sites_is_refused() -> None:
    links = [{"a": "idc-a", "b": "idc-b", "capacity_mbps": 1000}, {"a": "idc-b", "b": "idc-a", "capacity_mbps": 5}]
    assert error_of(document(links=links)).field == "links[1]"


def test_a_link_to_an_unknown_site_is_refused() -> None:
    assert error_of(document(links=[{"a": "idc-a", "b": "moon", "capacity_mbps": 1}])).field == "links[0].b"


def test_a_link_from_a_site_to_itself_is_refused() -> None:
    assert error_of(document(links=[{"a": "idc-a", "b": "idc-a", "capacity_mbps": 1}])).field == "links[0]"


def test_an_inventory_needs_a_site() -> None:
    assert error_of({"sites": []}).field == "sites"


def test_free_bandwidth_never_goes_negative() -> None:
    inv = parse(Inventory, document(links=[{"a": "idc-a", "b": "idc-b", "capacity_mbps": 100,
                                            "online_used_mbps": 300}]))
    link = inv.link("idc-a", "idc-b")
    assert link is not None and link.free_mbps == 0


@pytest.mark.parametrize(
    ("disk", "stable", "node_class"),
    [(True, True, "disk-stable"), (True, False, "disk-elastic"), (False, True, "diskless-stable"),
     (False, False, "diskless-elastic")],
)
def test_node_class_combines_both_labels(disk: bool, stable: bool, node_class: str) -> None:
    n = Node(name="n", site="s", cluster="c", capacity=Resources.of(cpu="1"), disk=disk, stable=stable)
    assert n.node_class == node_class
    assert n.labels == frozenset(node_class.split("-"))
