"""Quantity text is read into exact integers in the broker's units, rounded up, and bad text names its field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InputError, QuantityError
from broker.model import UNLIMITED, Dimension, format_quantity, parse_quantity

CPU, MEMORY, DISK, NETWORK, GPU = Dimension.CPU, Dimension.MEMORY, Dimension.DISK, Dimension.NETWORK, Dimension.GPU


@pytest.mark.parametrize(
    ("text", "dimension", "amount"),
    [
        pytest.param("4000m", CPU, 4000, id="cpu-millicores"),
        pytest.param("4", CPU, 4000, id="cpu-bare-cores"),
        pytest.param("1.5", CPU, 1500, id="cpu-fractional-cores"),
        pytest.param(".5", CPU, 500, id="cpu-leading-dot"),
        pytest.param("+2", CPU, 2000, id="cpu-explicit-plus"),
        pytest.param(" 250m ", CPU, 250, id="cpu-surrounding-space"),
        pytest.param("8Gi", MEMORY, 8192, id="memory-gibibytes"),
        pytest.param("512Mi", MEMORY, 512, id="memory-mebibytes"),
        pytest.param("1073741824", MEMORY, 1024, id="memory-bare-bytes"),
        pytest.param("100Gi", DISK, 100, id="disk-gibibytes"),
        pytest.param("1Ti", DISK, 1024, id="disk-tebibytes"),
        pytest.param("10G", NETWORK, 10_000, id="network-gigabits"),
        pytest.param("25000M", NETWORK, 25_000, id="network-megabits"),
        pytest.param("1000", NETWORK, 1000, id="network-bare-megabits"),
        pytest.param("8", GPU, 8, id="gpu-devices"),
    ],
)
def test_accepted_text_is_read_in_the_dimension_unit(text: str, dimension: Dimension, amount: int) -> None:
    assert parse_quantity(text, dimension, "f") == amount


@pytest.mark.parametrize(
    ("text", "dimension", "amount"),
    [
        pytest.param("1G", MEMORY, 954, id="1G-is-953.67MiB"),
        pytest.param("500G", DISK, 466, id="500G-is-465.66GiB"),
        pytest.param("0.1m", CPU, 1, id="sub-millicore"),
        pytest.param("1n", CPU, 1, id="nanocore"),
        pytest.param("1", MEMORY, 1, id="one-byte"),
    ],
)
def test_a_fraction_of_the_unit_is_rounded_up(text: str, dimension: Dimension, amount: int) -> None:
    assert parse_quantity(text, dimension, "f") == amount


@pytest.mark.parametrize(
    ("text", "dimension", "amount"),
    [
        pytest.param("1e3", CPU, 1_000_000, id="cpu-1e3-cores"),
        pytest.param("2E-3", CPU, 2, id="cpu-negative-exponent"),
        pytest.param("1e9", MEMORY, 954, id="memory-1e9-bytes"),
        pytest.param("1.5e1", GPU, 15, id="gpu-fractional-mantissa"),
    ],
)
def test_exponent_forms_are_plain_numbers(text: str, dimension: Dimension, amount: int) -> None:
    assert parse_quantity(text, dimension, "f") == amount


def test_network_exponent_form_means_the_same_as_the_plain_number() -> None:
    assert parse_quantity("1e4", NETWORK, "f") == parse_quantity("10000", NETWORK, "f")


def test_ints_and_floats_read_as_their_text() -> None:
    assert parse_quantity(4, CPU, "f") == 4000
    assert parse_quantity(1.5, CPU, "f") == 1500
    assert parse_quantity(1024, MEMORY, "f") == 1


@pytest.mark.parametrize("text", ["unlimited", "Unlimited", "UNLIMITED"])
def test_unlimited_is_the_explicit_no_cap(text: str) -> None:
    assert parse_quantity(text, MEMORY, "f") == UNLIMITED


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("-1", "negative", id="negative-text"),
        pytest.param(-1, "negative", id="negative-int"),
        pytest.param("-500m", "negative", id="negative-millicores"),
        pytest.param("abc", "not a cpu quantity", id="garbage"),
        pytest.param("1.2.3", "not a cpu quantity", id="two-dots"),
        pytest.param("1 Gi", "not a cpu quantity", id="space-before-suffix"),
        pytest.param("1e", "not a cpu quantity", id="dangling-exponent"),
        pytest.param("", "not a cpu quantity", id="empty"),
        pytest.param("nan", "not a cpu quantity", id="nan-text"),
        pytest.param("inf", "not a cpu quantity", id="inf-text"),
        pytest.param(math.nan, "not a cpu quantity", id="nan-float"),
        pytest.param(math.inf, "not a cpu quantity", id="inf-float"),
        pytest.param(True, "boolean", id="boolean-true"),
        pytest.param(False, "boolean", id="boolean-false"),
        pytest.param(None, "got NoneType", id="none"),
        pytest.param([4], "got list", id="list"),
        pytest.param("9" * 65, "longer than 64", id="too-long"),
        pytest.param("1e100", "larger than the largest", id="above-unlimited"),
    ],
)
def test_bad_input_raises_quantity_error_naming_the_field(value: object, fragment: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(value, CPU, "nodes[2].capacity.cpu")
    assert caught.value.field == "nodes[2].capacity.cpu"
    assert fragment in caught.value.message


def test_quantity_error_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_quantity("garbage", MEMORY, "memory")


@pytest.mark.parametrize(
    ("amount", "dimension", "text"),
    [
        pytest.param(4000, CPU, "4", id="whole-cores"),
        pytest.param(1500, CPU, "1500m", id="millicores"),
        pytest.param(8192, MEMORY, "8Gi", id="gibibytes"),
        pytest.param(1000, MEMORY, "1000Mi", id="mebibytes"),
        pytest.param(2048, DISK, "2Ti", id="tebibytes"),
        pytest.param(100, DISK, "100Gi", id="disk-gibibytes"),
        pytest.param(10_000, NETWORK, "10G", id="gigabits"),
        pytest.param(1500, NETWORK, "1500", id="megabits"),
        pytest.param(3, GPU, "3", id="gpus"),
        pytest.param(UNLIMITED, MEMORY, "unlimited", id="unlimited"),
    ],
)
def test_format_is_the_shortest_exact_text(amount: int, dimension: Dimension, text: str) -> None:
    assert format_quantity(amount, dimension) == text


@given(st.sampled_from(list(Dimension)), st.integers(min_value=0, max_value=UNLIMITED))
def test_format_then_parse_is_the_identity(dimension: Dimension, amount: int) -> None:
    assert parse_quantity(format_quantity(amount, dimension), dimension, "f") == amount
