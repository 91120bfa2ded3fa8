"""Input documents and problem validation: bad input names the field."""

from __future__ import annotations

import pytest

from broker.errors import InputError
from broker.model import UNLIMITED, Demand, parse
from broker.scheduler import PlacementProblem, QuotaDocument

from .builders import fleet


def test_runtime_quota_caps_only_the_dimensions_it_names() -> None:
    quota = parse(QuotaDocument, {"teams": {"a": {"runtime": {"cpu": "10"}}}}).teams["a"]
    runtime = quota.runtime
    assert (runtime.cpu_milli, runtime.memory_mib, runtime.gpu) == (10_000, UNLIMITED, UNLIMITED)


def test_runtime_quota_left_out_means_no_cap() -> None:
    quota = parse(QuotaDocument, {"teams": {"a": {"min": {"cpu": "1"}}}}).teams["a"]
    assert quota.runtime.cpu_milli == UNLIMITED and quota.min.cpu_milli == 1000


@pytest.mark.parametrize(("data", "field"), [
    ({"teams": {"a": {"runtime": {"cpu": "lots"}}}}, "teams.a.runtime"),
    ({"teams": {"a": {"weight": 0}}}, "teams.a.weight"),
    ({"teams": {"bad name!": {}}}, "teams"),
    ({"teams": {"a": {"surprise": 1}}}, "teams.a.surprise"),
], ids=["bad-quantity", "zero-weight", "bad-team-name", "unknown-key"])
def test_bad_quota_documents_name_the_field(data: object, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(QuotaDocument, data)
    assert caught.value.field.startswith(field)


def test_lendable_capacity_of_an_unknown_node_is_refused() -> None:
    problem = fleet().node("n").build()
    with pytest.raises(InputError) as caught:
        parse(PlacementProblem, {**dict(problem), "lendable": {"ghost": {"cpu": "1"}}})
    assert caught.value.field == "lendable.ghost"


def test_lending_more_than_the_node_has_is_refused() -> None:
    problem = fleet().node("n", cpu="4").build()
    with pytest.raises(InputError) as caught:
        parse(PlacementProblem, {**dict(problem), "lendable": {"n": {"cpu": "5"}}})
    assert caught.value.field == "lendable.n"


def test_a_class_reading_from_an_unknown_site_is_refused() -> None:
    problem = fleet().node("n").build()
    demand = {"classes": [{"name": "w", "team": "t", "shape": {"cpu": "1"}, "count": 1,
                           "data_site": "atlantis"}]}
    with pytest.raises(InputError) as caught:
        parse(PlacementProblem, {**dict(problem), "demand": demand})
    assert caught.value.field == "demand.classes[0].data_site"


def test_a_node_missing_from_the_lendable_map_lends_nothing() -> None:
    problem = fleet().node("n1").node("n2").lend("n1", cpu="1", memory="1Gi").build()
    assert problem.lendable_of(problem.inventory.nodes[1]).is_zero()


@pytest.mark.parametrize(("classes", "reason"), [
    ([{"name": "w", "team": "t", "shape": {"cpu": "1"}, "count": 1, "am_class": "ghost"}], "unknown class"),
    ([{"name": "d", "team": "t", "shape": {"cpu": "1"}, "count": 1},
      {"name": "w", "team": "t", "shape": {"cpu": "1"}, "count": 1, "am_class": "d"}], "must be an is_am"),
    ([{"name": "d", "team": "u", "shape": {"cpu": "1"}, "count": 1, "is_am": True},
      {"name": "w", "team": "t", "shape": {"cpu": "1"}, "count": 1, "am_class": "d"}], "must be an is_am"),
], ids=["unknown", "not-an-am", "other-team"])
def test_an_am_class_must_be_an_am_class_of_the_same_team(classes: list[dict[str, object]], reason: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(Demand, {"classes": classes})
    assert caught.value.field == f"classes[{len(classes) - 1}].am_class"
    assert reason in caught.value.message
