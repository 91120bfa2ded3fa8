"""Demand classes: shapes must ask for something; disk placement follows needs_disk and remote_shuffle."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import InputError
from broker.model import Demand, DemandClass, parse


def demand_class(**extra: Any) -> dict[str, Any]:
    return {"name": "etl", "team": "search", "shape": {"cpu": "1", "memory": "4Gi"}, "count": 10} | extra


@pytest.mark.parametrize(
    ("needs_disk", "remote_shuffle", "requires_disk"),
    [(False, False, False), (False, True, False), (True, False, True), (True, True, False)],
)
def test_requires_disk_unless_a_remote_shuffle_takes_the_data(needs_disk: bool, remote_shuffle: bool,
                                                               requires_disk: bool) -> None:
    cls = parse(DemandClass, demand_class(needs_disk=needs_disk, remote_shuffle=remote_shuffle))
    assert cls.requires_disk is requires_disk


@pytest.mark.parametrize("shape", [{}, {"disk": "10Gi"}, {"gpu": 1}], ids=["empty", "disk-only", "gpu-only"])
def test_a_shape_without_cpu_or_memory_is_refused(shape: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        parse(DemandClass, demand_class(shape=shape))
    assert caught.value.field == "shape"


def test_a_negative_count_is_refused_by_name() -> None:
    with pytest.raises(InputError) as caught:
        parse(DemandClass, demand_class(count=-1))
    assert caught.value.field == "count"


def test_duplicate_class_names_are_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse(Demand, {"classes": [demand_class(), demand_class(team="ads")]})
    assert caught.value.field == "classes[1].name"


def test_a_bad_shape_inside_a_document_names_the_nested_field() -> None:
    with pytest.raises(InputError) as caught:
        parse(Demand, {"classes": [demand_class(), demand_class(name="b", shape={"memory": "x"})]})
    assert caught.value.field == "classes[1].shape.memory"


def test_more_running_than_wanted_is_refused_by_name() -> None:
    with pytest.raises(InputError) as caught:
        parse(DemandClass, demand_class(count=2, running=3))
    assert caught.value.field == "running"
