"""``Resources.exact`` builds, without validation, values that cannot be told apart from validated ones."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from broker.model import UNLIMITED, Resources

amounts = st.integers(min_value=0, max_value=UNLIMITED)
five = st.tuples(amounts, amounts, amounts, amounts, amounts)


def validated(values: tuple[int, int, int, int, int]) -> Resources:
    return Resources.model_validate(dict(zip(Resources.FIELDS, values, strict=True)))


@given(five)
def test_an_exact_value_equals_the_validated_value_and_hashes_alike(values: tuple[int, int, int, int, int]) -> None:
    fast, checked = Resources.exact(*values), validated(values)
    assert fast == checked and checked == fast
    assert hash(fast) == hash(checked)
    assert len({fast, checked}) == 1


@given(five)
def test_an_exact_value_dumps_and_stores_like_the_validated_value(values: tuple[int, int, int, int, int]) -> None:
    fast, checked = Resources.exact(*values), validated(values)
    assert fast.model_dump() == checked.model_dump()
    assert fast.model_dump_json() == checked.model_dump_json()
    assert fast.for_storage() == checked.for_storage()
    assert Resources.from_storage(fast.for_storage()) == fast
    assert list(fast) == list(values)


@given(five)
def test_an_exact_value_is_what_model_construct_builds(values: tuple[int, int, int, int, int]) -> None:
    fast = Resources.exact(*values)
    constructed = Resources.model_construct(**dict(zip(Resources.FIELDS, values, strict=True)))
    assert fast.__dict__ == constructed.__dict__
    assert fast.model_fields_set == constructed.model_fields_set
    assert fast.__pydantic_extra__ == constructed.__pydantic_extra__
    assert fast.__pydantic_private__ == constructed.__pydantic_private__


@given(five, five)
def test_arithmetic_on_exact_values_matches_arithmetic_on_validated_values(
        a: tuple[int, int, int, int, int], b: tuple[int, int, int, int, int]) -> None:
    fast_a, fast_b = Resources.exact(*a), Resources.exact(*b)
    checked_a, checked_b = validated(a), validated(b)
    assert fast_a + fast_b == checked_a + checked_b
    assert fast_a - fast_b == checked_a - checked_b
    assert fast_a.min(fast_b) == checked_a.min(checked_b)
    assert fast_a.fits_in(fast_b) == checked_a.fits_in(checked_b)


def test_an_exact_value_is_frozen() -> None:
    with pytest.raises(ValidationError):
        Resources.exact(1000, 1024).cpu_milli = 5  # type: ignore[misc]


def test_an_exact_value_copies_pickles_and_updates_like_any_model() -> None:
    value = Resources.exact(1000, 1024, 10, 100, 1)
    assert copy.deepcopy(value) == value
    assert pickle.loads(pickle.dumps(value)) == value
    assert value.model_copy(update={"gpu": 2}) == Resources.exact(1000, 1024, 10, 100, 2)
    assert value.model_copy(update={"gpu": 2}).model_fields_set == set(Resources.FIELDS)


def test_omitted_amounts_are_zero() -> None:
    assert Resources.exact(cpu_milli=500) == Resources(cpu_milli=500)
    assert Resources.exact().is_zero()
