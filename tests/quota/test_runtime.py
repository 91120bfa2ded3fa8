"""Runtime quota: guarantees first, then the surplus by weight, within max and borrowing limits, exactly."""

from __future__ import annotations

import pytest

from broker.errors import InputError
from broker.model import Resources
from broker.quota import PPM, compute_runtime_quota, scale_down, water_fill

from .builders import cpu, group, policy


def runtime_cores(result_groups: object, name: str) -> int:
    return result_groups.groups[name].runtime.cpu_milli // 1000  # type: ignore[attr-defined]


def test_a_group_gets_its_min_when_it_wants_it_even_if_others_want_more() -> None:
    p = policy(group("a").min(cpu="30"), group("b").min(cpu="10"))
    result = compute_runtime_quota(p, cpu(40), {"a": cpu(30), "b": cpu(1000)})
    assert runtime_cores(result, "a") == 30
    assert runtime_cores(result, "b") == 10


def test_unused_min_is_lent_to_groups_with_unmet_demand() -> None:
    p = policy(group("a").min(cpu="30"), group("b").min(cpu="10"))
    result = compute_runtime_quota(p, cpu(40), {"a": cpu(5), "b": cpu(100)})
    assert runtime_cores(result, "a") == 5
    assert runtime_cores(result, "b") == 35
    assert result.groups["a"].lent == cpu(25)
    assert result.groups["b"].borrowed == cpu(25)


def test_the_surplus_is_shared_by_weight() -> None:
    p = policy(group("a").weight(3), group("b").weight(1))
    result = compute_runtime_quota(p, cpu(40), {"a": cpu(100), "b": cpu(100)})
    assert (runtime_cores(result, "a"), runtime_cores(result, "b")) == (30, 10)


def test_a_group_never_exceeds_its_max() -> None:
    p = policy(group("a").max(cpu="8"), group("b"))
    result = compute_runtime_quota(p, cpu(40), {"a": cpu(100), "b": cpu(100)})
    assert runtime_cores(result, "a") == 8
    assert runtime_cores(result, "b") == 32


def test_borrowing_limit_caps_what_a_group_takes_above_its_min() -> None:
    p = policy(group("a").min(cpu="10").borrow(cpu="5"), group("b"))
    result = compute_runtime_quota(p, cpu(100), {"a": cpu(100), "b": cpu(10)})
    assert runtime_cores(result, "a") == 15


def test_lending_limit_keeps_the_unlendable_part_of_min_even_when_idle() -> None:
    p = policy(group("a").min(cpu="30").lend(cpu="10"), group("b"))
    result = compute_runtime_quota(p, cpu(40), {"a": cpu(0), "b": cpu(100)})
    assert runtime_cores(result, "a") == 20
    assert result.groups["a"].lent == cpu(10)
    assert runtime_cores(result, "b") == 20


def test_mins_scale_down_in_proportion_when_the_pool_shrinks_below_them() -> None:
    p = policy(group("a").min(cpu="60"), group("b").min(cpu="40"))
    result = compute_runtime_quota(p, cpu(50), {"a": cpu(100), "b": cpu(100)})
    assert (runtime_cores(result, "a"), runtime_cores(result, "b")) == (30, 20)
    assert result.scaled and result.scaled_dimensions == ("cpu",)
    assert result.min_ratio_ppm[0] == PPM // 2
    assert result.groups["a"].min == cpu(30)


def test_scaling_reaches_nested_groups() -> None:
    p = policy(group("org").min(cpu="100"), group("t1").under("org").min(cpu="60"),
               group("t2").under("org").min(cpu="40"))
    result = compute_runtime_quota(p, cpu(50), {"t1": cpu(100), "t2": cpu(100)})
    assert (result.groups["t1"].min, result.groups["t2"].min) == (cpu(30), cpu(20))


def test_an_inner_group_divides_only_what_it_was_given() -> None:
    p = policy(group("org").max(cpu="20"), group("t1").under("org"), group("t2").under("org"), group("other"))
    result = compute_runtime_quota(p, cpu(100), {"t1": cpu(50), "t2": cpu(50), "other": cpu(10)})
    assert runtime_cores(result, "org") == 20
    assert runtime_cores(result, "t1") + runtime_cores(result, "t2") == 20
    assert result.groups["org"].demand == cpu(100)


def test_percent_of_pool_limits_follow_the_pool() -> None:
    p = policy(group("a").min(cpu="50%").max(cpu="50%"), group("b"))
    small = compute_runtime_quota(p, cpu(10), {"a": cpu(100), "b": cpu(100)})
    large = compute_runtime_quota(p, cpu(1000), {"a": cpu(10000), "b": cpu(10000)})
    assert (runtime_cores(small, "a"), runtime_cores(large, "a")) == (5, 500)


def test_dimensions_are_divided_independently() -> None:
    p = policy(group("a").min(cpu="10"), group("b").min(memory="10Gi"))
    pool = Resources.of(cpu="20", memory="20Gi")
    result = compute_runtime_quota(p, pool, {"a": Resources.of(cpu="20", memory="20Gi"),
                                             "b": Resources.of(cpu="20", memory="20Gi")})
    assert result.groups["a"].runtime == Resources.of(cpu="15", memory="5Gi")
    assert result.groups["b"].runtime == Resources.of(cpu="5", memory="15Gi")


def test_rounding_gives_leftover_units_to_the_group_declared_first() -> None:
    p = policy(group("a"), group("b"), group("c"))
    result = compute_runtime_quota(p, Resources.exact(cpu_milli=10), {n: cpu(1) for n in "abc"})
    assert [result.groups[n].runtime.cpu_milli for n in "abc"] == [4, 3, 3]


@pytest.mark.parametrize(("key", "reason"), [("ghost", "no quota group"), ("org", "not a leaf")])
def test_demand_for_an_unknown_or_inner_group_is_an_input_error(key: str, reason: str) -> None:
    p = policy(group("org"), group("t").under("org"))
    with pytest.raises(InputError) as caught:
        compute_runtime_quota(p, cpu(1), {key: cpu(1)})
    assert caught.value.field == f"demand.{key}" and reason in caught.value.message


def test_water_fill_saturates_small_claimants_and_splits_the_rest_by_weight() -> None:
    assert water_fill(10, [2, 100, 100], [1, 1, 2]) == [2, 3, 5]


def test_scale_down_keeps_amounts_that_already_fit() -> None:
    assert scale_down(10, [3, 4]) == [3, 4]
    assert scale_down(5, [6, 4]) == [3, 2]
