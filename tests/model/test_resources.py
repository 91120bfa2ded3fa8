"""Resources: exact, frozen vectors with saturating arithmetic and bin-packing counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from broker.errors import InputError
from broker.model import UNBOUNDED, UNLIMITED, ZERO, Resources, parse, total

# Finite amounts small enough that a sum of two never saturates: the exact-arithmetic regime.
amounts = st.integers(min_value=0, max_value=UNLIMITED // 2 - 1)
vectors = st.builds(Resources.exact, amounts, amounts, amounts, amounts, amounts)


def test_friendly_keys_and_exact_fields_build_the_same_value() -> None:
    friendly = Resources.of(cpu="2", memory="4Gi", disk="100Gi", network="10G", gpu=1)
    exact = Resources(cpu_milli=2000, memory_mib=4096, disk_gib=100, network_mbps=10_000, gpu=1)
    assert friendly == exact


def test_storage_round_trip_is_lossless() -> None:
    value = Resources.exact(1234, 5678, 9, 10, 2)
    assert value.for_storage() == {"cpu_milli": 1234, "memory_mib": 5678, "disk_gib": 9, "network_mbps": 10, "gpu": 2}
    assert Resources.from_storage(value.for_storage()) == value


def test_quantities_leave_out_zero_dimensions() -> None:
    assert Resources.of(cpu="1500m", memory="8Gi").as_quantities() == {"cpu": "1500m", "memory": "8Gi"}


def test_resources_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Resources.of(cpu="1").cpu_milli = 5  # type: ignore[misc]


def test_friendly_and_exact_key_for_one_dimension_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse(Resources, {"cpu": "1", "cpu_milli": 1000})
    assert caught.value.field == "cpu"


def test_boolean_gpu_count_is_refused() -> None:
    with pytest.raises(InputError):
        parse(Resources, {"gpu": True})


def test_addition_is_per_dimension() -> None:
    assert Resources.exact(1, 2, 3, 4, 5) + Resources.exact(10, 20, 30, 40, 50) == Resources.exact(11, 22, 33, 44, 55)


def test_subtraction_stops_at_zero() -> None:
    assert Resources.exact(1000, 10) - Resources.exact(3000, 4) == Resources.exact(0, 6)


def test_unlimited_absorbs_addition_and_subtraction() -> None:
    some = Resources.of(cpu="3", memory="1Gi")
    assert some + UNBOUNDED == UNBOUNDED
    assert UNBOUNDED - some == UNBOUNDED


def test_addition_saturates_at_unlimited() -> None:
    big = Resources.exact(cpu_milli=UNLIMITED - 1)
    assert (big + big).cpu_milli == UNLIMITED


def test_multiplication_is_copies_and_saturates() -> None:
    shape = Resources.of(cpu="2", memory="4Gi")
    assert shape * 3 == Resources.of(cpu="6", memory="12Gi")
    assert 3 * shape == shape * 3
    assert (Resources.exact(cpu_milli=UNLIMITED // 2 + 1) * 2).cpu_milli == UNLIMITED


def test_negative_multiplication_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Resources.of(cpu="1") * -1


def test_scaled_rounds_down() -> None:
    assert Resources.exact(1000, 8192).scaled(1, 3) == Resources.exact(333, 2730)
    assert Resources.exact(cpu_milli=1).scaled(1, 2) == ZERO


def test_scaled_keeps_unlimited() -> None:
    assert UNBOUNDED.scaled(1, 2) == UNBOUNDED


@pytest.mark.parametrize(("numerator", "denominator"), [(-1, 2), (1, 0), (1, -3)])
def test_scaled_refuses_a_negative_or_undefined_factor(numerator: int, denominator: int) -> None:
    with pytest.raises(ValueError, match="scale factor"):
        Resources.of(cpu="1").scaled(numerator, denominator)


def test_count_in_packs_whole_copies_only() -> None:
    node = Resources.of(cpu="3.5", memory="64Gi")
    assert Resources.of(cpu="2", memory="4Gi").count_in(node) == 1


def test_count_in_is_limited_by_the_scarcest_dimension() -> None:
    node = Resources.of(cpu="64", memory="10Gi")
    assert Resources.of(cpu="1", memory="4Gi").count_in(node) == 2


def test_count_in_ignores_dimensions_the_shape_does_not_ask_for() -> None:
    assert Resources.of(cpu="1").count_in(Resources.of(cpu="4")) == 4


def test_an_empty_shape_fits_unlimited_times() -> None:
    assert ZERO.count_in(Resources.of(cpu="1")) == UNLIMITED


def test_fits_in_needs_every_dimension() -> None:
    node = Resources.of(cpu="4", memory="8Gi")
    assert Resources.of(cpu="4", memory="8Gi").fits_in(node)
    assert not Resources.of(cpu="1", memory="9Gi").fits_in(node)
    assert not Resources.of(cpu="1", gpu=1).fits_in(node)


def test_min_and_max_are_element_wise() -> None:
    a, b = Resources.exact(1, 20), Resources.exact(10, 2)
    assert a.min(b) == Resources.exact(1, 2)
    assert a.max(b) == Resources.exact(10, 20)


def test_total_sums_and_zero_is_the_empty_sum() -> None:
    assert total([]) == ZERO
    assert total([Resources.exact(1, 1), Resources.exact(2, 3)]) == Resources.exact(3, 4)
    assert ZERO.is_zero() and not Resources.exact(gpu=1).is_zero()


@given(vectors, vectors)
def test_below_saturation_subtraction_undoes_addition(a: Resources, b: Resources) -> None:
    assert (a + b) - b == a


@given(vectors, vectors)
def test_difference_is_never_negative_nor_more_than_the_minuend(a: Resources, b: Resources) -> None:
    assert all(0 <= d <= x for d, x in zip(a - b, a, strict=True))


@given(vectors, vectors)
def test_count_in_copies_always_fit(shape: Resources, space: Resources) -> None:
    count = shape.count_in(space)
    if count < UNLIMITED:
        assert (shape * count).fits_in(space)
        assert not (shape * (count + 1)).fits_in(space)
