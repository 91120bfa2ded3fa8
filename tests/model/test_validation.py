"""parse / load: one InputError naming the (nested) field, never a pydantic traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.errors import InputError
from broker.model import Inventory, Resources, load, parse, read_document


def inventory(**node: Any) -> dict[str, Any]:
    """A one-site, one-cluster inventory document with one node, overridden by ``node``."""
    base = {"name": "n1", "site": "idc-a", "cluster": "k1", "capacity": {"cpu": "8", "memory": "32Gi"}}
    return {"sites": [{"name": "idc-a"}], "clusters": [{"name": "k1", "site": "idc-a"}], "nodes": [base | node]}


@pytest.mark.parametrize(
    ("node", "field"),
    [
        pytest.param({"capacity": {"cpu": "lots"}}, "nodes[0].capacity.cpu", id="bad-quantity"),
        pytest.param({"capacity": {"memory": "-1Gi"}}, "nodes[0].capacity.memory", id="negative-quantity"),
        pytest.param({"capacity": {"cpu": True}}, "nodes[0].capacity.cpu", id="boolean-quantity"),
        pytest.param({"capacity": {"cpu_milli": -5}}, "nodes[0].capacity.cpu_milli", id="negative-exact"),
        pytest.param({"site": "nowhere"}, "nodes[0].site", id="unknown-site"),
        pytest.param({"name": "-bad-"}, "nodes[0].name", id="bad-name"),
        pytest.param({"colour": "red"}, "nodes[0].colour", id="unknown-key"),
        pytest.param({"nic_mbps": "fast"}, "nodes[0].nic_mbps", id="bad-int"),
    ],
)
def test_parse_names_the_nested_field(node: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(Inventory, inventory(**node))
    assert caught.value.field == field


def test_parse_lists_every_problem_in_one_message() -> None:
    doc = inventory(capacity={"cpu": "8"}, nic_mbps="fast", rack=7)
    with pytest.raises(InputError) as caught:
        parse(Inventory, doc)
    assert "nodes[0].nic_mbps" in caught.value.message and "nodes[0].rack" in caught.value.message


def test_parse_prefixes_the_field_with_where() -> None:
    with pytest.raises(InputError) as caught:
        parse(Resources, {"cpu": "x"}, where="spec.capacity")
    assert caught.value.field == "spec.capacity.cpu"


def test_parse_of_a_missing_field_names_it() -> None:
    doc = inventory()
    del doc["nodes"][0]["capacity"]
    with pytest.raises(InputError) as caught:
        parse(Inventory, doc)
    assert caught.value.field == "nodes[0].capacity"


def test_load_reads_yaml_and_names_file_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("sites: [{name: idc-a}]\n", encoding="utf-8")
    assert load(Inventory, good).sites[0].name == "idc-a"
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [{name: idc-a, cost_per_core_hour: -1}]\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load(Inventory, bad)
    assert caught.value.field == f"{bad}: sites[0].cost_per_core_hour"


def test_load_of_a_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(InputError) as caught:
        load(Inventory, missing)
    assert caught.value.field == str(missing)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("sites: [unclosed\n", "not valid YAML", id="bad-yaml"),
        pytest.param("just a string\n", "mapping at the top level", id="scalar-document"),
    ],
)
def test_read_document_refuses_what_is_not_a_document(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=fragment):
        read_document(path)


def test_read_document_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_bytes(b"sites: \xff\xfe\n")
    with pytest.raises(InputError, match="not valid YAML"):
        read_document(path)
