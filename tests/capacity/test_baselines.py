"""The baselines, exactly as users know them: online-only, a static fraction, Koordinator's usage-threshold."""

from __future__ import annotations

import pytest

from broker.capacity import OnlineOnly, StaticFraction, UsageHistory, UsageThreshold, estimator_named

from .builders import fleet, observe, one_node


def history_with(cpu_milli: int, memory_mib: int, at_s: float = 0.0) -> UsageHistory:
    history = UsageHistory(1)
    observe(history, at_s, [cpu_milli], [memory_mib])
    return history


def test_usage_threshold_lends_capacity_times_threshold_minus_reserve_minus_last_usage() -> None:
    node = one_node(cpu_milli=10_000, memory_mib=10_240, reserved_cpu_milli=500, reserved_memory_mib=1024)
    history = history_with(cpu_milli=2000, memory_mib=3072)
    lent = UsageThreshold().estimate(node, history, now_s=10)
    assert lent.cpu_milli.tolist() == [10_000 * 60 // 100 - 500 - 2000]
    assert lent.memory_mib.tolist() == [10_240 * 65 // 100 - 1024 - 3072]


def test_usage_threshold_reacts_to_the_last_sample_not_the_peak() -> None:
    history = history_with(cpu_milli=5000, memory_mib=0)
    observe(history, 10, [1000], [0])
    assert UsageThreshold().estimate(one_node(), history, now_s=10).cpu_milli.tolist() == [6000 - 1000]


def test_usage_threshold_never_lends_below_zero() -> None:
    history = history_with(cpu_milli=9000, memory_mib=10_000)
    lent = UsageThreshold().estimate(one_node(), history, now_s=0)
    assert lent.cpu_milli.tolist() == [0] and lent.memory_mib.tolist() == [0]


def test_usage_threshold_keeps_lending_on_metrics_up_to_15_minutes_old() -> None:
    lent = UsageThreshold().estimate(one_node(), history_with(1000, 1024), now_s=15 * 60)
    assert lent.cpu_milli.tolist() == [5000]


def test_usage_threshold_lends_nothing_on_metrics_older_than_15_minutes() -> None:
    lent = UsageThreshold().estimate(one_node(), history_with(1000, 1024), now_s=15 * 60 + 1)
    assert lent.cpu_milli.tolist() == [0] and lent.memory_mib.tolist() == [0]


def test_usage_threshold_has_no_stable_capacity() -> None:
    lent = UsageThreshold().estimate(one_node(), history_with(0, 0), now_s=0)
    assert lent.stable_cpu_milli.tolist() == [0] and lent.stable_memory_mib.tolist() == [0]


def test_static_fraction_lends_a_fraction_of_capacity_minus_reserve_whatever_the_load() -> None:
    nodes = fleet([10_000, 20_000], [10_240, 4096], [1000, 0], [1024, 0])
    history = UsageHistory(2)
    observe(history, 0, [9000, 20_000], [10_000, 4096])
    lent = StaticFraction(0.3).estimate(nodes, history, now_s=0)
    assert lent.cpu_milli.tolist() == [2000, 6000]
    assert lent.memory_mib.tolist() == [2048, 1228]
    assert lent.stable_cpu_milli.tolist() == lent.cpu_milli.tolist()


@pytest.mark.parametrize("fraction", [-0.1, 1.1])
def test_static_fraction_outside_zero_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError):
        StaticFraction(fraction)


def test_online_only_lends_nothing() -> None:
    lent = OnlineOnly().estimate(one_node(), history_with(0, 0), now_s=0)
    assert lent.cpu_milli.tolist() == [0] and lent.memory_mib.tolist() == [0]


@pytest.mark.parametrize("name", ["online-only", "static", "usage-threshold", "broker"])
def test_every_estimator_is_found_by_its_name(name: str) -> None:
    assert estimator_named(name).name == name


def test_an_unknown_estimator_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown estimator"):
        estimator_named("magic")
