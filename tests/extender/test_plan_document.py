"""Plan documents become tables straight from decoded JSON, exactly as a validated ``Plan`` would, and a
document the ``Plan`` model rejects is rejected with the same field named."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import InputError
from broker.model import Plan, Sink
from broker.model.validation import parse
from broker.service.extender import PlanDocument, build_tables, tables_from_document

from .builders import node, plan, team


def document(p: Plan) -> Any:
    """The plan as the planner writes it and a source decodes it."""
    return orjson.loads(p.model_dump_json())


def sample_plan() -> Plan:
    return plan(
        nodes=[
            node("n1").stable().disk().places("team-a", "exec", 3).places("team-b", "am", 1, is_am=True),
            node("n2").batch(cpu="4", memory="8Gi").places("team-a", "exec", 2, sink=Sink.YARN),
            node("n3").places("team-b", "exec", 0),
        ],
        teams=[team("team-a"), team("team-b").namespaces("shared", "team-b")],
        version=4,
    )


def test_tables_from_the_document_equal_the_tables_of_the_validated_plan() -> None:
    p = sample_plan()
    assert tables_from_document(PlanDocument(document(p))) == build_tables(p)


def test_the_cluster_selects_namespace_bindings_as_for_a_plan() -> None:
    p = plan(nodes=[], teams=[team("team-a").namespaces("x", cluster="k8s-b")])
    assert tables_from_document(PlanDocument(document(p)), "k8s-b") == build_tables(p, "k8s-b")


def test_friendly_quantities_are_read_as_the_plan_model_reads_them() -> None:
    data = document(sample_plan())
    data["nodes"][1]["kubernetes"] = {"cpu": "4", "memory": "8Gi"}
    tables = tables_from_document(PlanDocument(data))
    assert tables == build_tables(parse(Plan, data))
    assert tables.nodes["n2"].capacity.cpu_milli == 4000


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("nodes", 0, "placements", 0, "count"), -1, "nodes[0].placements[0].count"),
        (("nodes", 0, "placements", 0, "sink"), "mesos", "nodes[0].placements[0].sink"),
        (("nodes", 1, "kubernetes", "cpu_milli"), "lots", "nodes[1].kubernetes"),
        (("nodes", 2, "node"), None, "nodes[2].node"),
        (("nodes", 2, "colour"), "blue", "nodes[2].colour"),
        (("teams", 0, "runtime_quota", "memory_mib"), -5, "teams[0].runtime_quota.memory_mib"),
        (("version",), "three", "version"),
    ],
    ids=["negative-count", "unknown-sink", "bad-quantity", "no-name", "unknown-key", "bad-quota", "version"],
)
def test_a_broken_document_is_refused_naming_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    data = document(sample_plan())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InputError) as error:
        tables_from_document(PlanDocument(data))
    assert error.value.field.startswith(field)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InputError):
        tables_from_document(PlanDocument([1, 2]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**63) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


def mutate(data: st.DataObject, value: Any) -> Any:
    """``value`` with one subtree replaced by arbitrary JSON (or a key dropped)."""
    if isinstance(value, dict) and value and data.draw(st.integers(0, 3)):
        key = data.draw(st.sampled_from(sorted(value)))
        if data.draw(st.integers(0, 5)) == 0:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: mutate(data, value[key])}
    if isinstance(value, list) and value and data.draw(st.integers(0, 3)):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate(data, value[i]), *value[i + 1 :]]
    return data.draw(json_values)


SAMPLE = document(sample_plan())


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_document_is_accepted_exactly_when_the_plan_model_accepts_it(data: st.DataObject) -> None:
    mutated = mutate(data, SAMPLE)
    try:
        expected = build_tables(parse(Plan, mutated))
    except InputError:
        with pytest.raises(InputError):
            tables_from_document(PlanDocument(mutated))
    else:
        assert tables_from_document(PlanDocument(mutated)) == expected
