"""The forecasting estimator: safe by construction, blind to nothing stale, ahead of the daily peak."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.capacity import DAY_S, Forecast, ForecastConfig, UsageHistory, UsageThreshold

from .builders import fleet, observe, one_node, replay

HOUR = 3600


Sample = tuple[float, list[int], list[int], list[bool]]
"""One observation: time, per-node CPU and memory usage, and which nodes reported."""
Case = tuple[list[int], list[int], list[int], list[int], list[Sample]]
"""Capacities (cpu, memory), reserves (cpu, memory) and the samples, in time order."""


@st.composite
def fleets_and_histories(draw: st.DrawFn) -> Case:
    """Random capacities and reserves, and a random sample sequence (times, usage <= capacity, seen mask)."""
    n = draw(st.integers(1, 4))
    cpu = draw(st.lists(st.integers(1000, 128_000), min_size=n, max_size=n))
    mem = draw(st.lists(st.integers(1024, 512 * 1024), min_size=n, max_size=n))
    res_cpu = [draw(st.integers(0, c // 4)) for c in cpu]
    res_mem = [draw(st.integers(0, m // 4)) for m in mem]
    samples: list[Sample] = []
    t = float(draw(st.integers(0, DAY_S)))
    for _ in range(draw(st.integers(1, 30))):
        t += draw(st.sampled_from([1.0, 10.0, 60.0, 299.0, 1800.0, 3 * HOUR, DAY_S - 600.0]))
        samples.append((
            t,
            [draw(st.integers(0, c)) for c in cpu],
            [draw(st.integers(0, m)) for m in mem],
            draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        ))
    return cpu, mem, res_cpu, res_mem, samples


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets_and_histories(), st.floats(0.0, 120.0))
def test_lendable_never_exceeds_the_safe_limit_minus_the_recent_peak(data: Case, delay_s: float) -> None:
    cpu, mem, res_cpu, res_mem, samples = data
    nodes = fleet(cpu, mem, res_cpu, res_mem)
    history = UsageHistory(len(cpu))
    for t, c, m, seen in samples:
        observe(history, t, c, m, seen)
    now = samples[-1][0] + delay_s
    config = ForecastConfig()
    lent = Forecast(config).estimate(nodes, history, now)
    for node in range(len(cpu)):
        mine = [(t, c[node], m[node]) for t, c, m, seen in samples if seen[node]]
        if not mine or now - mine[-1][0] > config.stale_after_s:
            assert lent.cpu_milli[node] == 0 and lent.memory_mib[node] == 0
            continue
        recent = [s for s in mine if s[0] >= now - config.recent_s]
        for dim, capacity, reserve, threshold in ((1, cpu[node], res_cpu[node], config.cpu_threshold),
                                                  (2, mem[node], res_mem[node], config.memory_threshold)):
            worst = max(mine[-1][dim], *(s[dim] for s in recent))
            bound = capacity * threshold - worst - config.floor_fraction * capacity - reserve
            lendable = (lent.cpu_milli if dim == 1 else lent.memory_mib)[node]
            assert lendable <= max(bound, 0.0) + 1e-6
    assert np.all(lent.stable_cpu_milli <= lent.cpu_milli)
    assert np.all(lent.stable_memory_mib <= lent.memory_mib)
    assert np.all(lent.cpu_milli >= 0) and np.all(lent.memory_mib >= 0)


def steady(cpu_milli: int, memory_mib: int, until_s: float, every_s: float = 10.0) -> UsageHistory:
    history = UsageHistory(1)
    replay(history, 0, until_s, every_s, lambda _t: (cpu_milli, memory_mib))
    return history


def test_a_node_with_fresh_flat_usage_lends_threshold_minus_usage_minus_floor() -> None:
    history = steady(2000, 2048, until_s=HOUR)
    estimator = Forecast()
    floor = estimator.config.floor_fraction
    lent = estimator.estimate(one_node(10_000, 10_240), history, now_s=HOUR - 10)
    assert lent.cpu_milli.tolist() == [math.floor(10_000 * 0.85 - 2000 - floor * 10_000)]
    assert lent.memory_mib.tolist() == [math.floor(10_240 * 0.90 - 2048 - floor * 10_240)]


def test_metrics_older_than_stale_after_lend_exactly_nothing() -> None:
    history = UsageHistory(2)
    observe(history, 0, [1000, 1000], [1024, 1024])
    observe(history, 100, [1000, 1000], [1024, 1024], seen=[True, False])
    lent = Forecast(ForecastConfig(stale_after_s=60)).estimate(fleet([10_000] * 2, [10_240] * 2), history, 100)
    assert lent.cpu_milli[0] > 0 and lent.memory_mib[0] > 0
    for part in (lent.cpu_milli, lent.memory_mib, lent.stable_cpu_milli, lent.stable_memory_mib):
        assert part[1] == 0


def test_metrics_exactly_stale_after_old_still_lend() -> None:
    history = UsageHistory(1)
    observe(history, 0, [1000], [1024])
    assert Forecast(ForecastConfig(stale_after_s=60)).estimate(one_node(), history, 60).cpu_milli[0] > 0


def daily_peak_usage(t: float) -> tuple[int, int]:
    """1 core all day, 6 cores from 20:00 to 21:00."""
    hour = (t % DAY_S) / HOUR
    return (6000 if 20 <= hour < 21 else 1000), 2048


def test_the_forecaster_lends_less_before_a_peak_it_saw_yesterday() -> None:
    history = UsageHistory(1)
    now = 2 * DAY_S + 19.5 * HOUR
    replay(history, 0, now + 1, 60, daily_peak_usage)
    node = one_node(10_000, 10_240)
    config = ForecastConfig()
    forecast = Forecast(config).estimate(node, history, now).cpu_milli[0]
    reactive = UsageThreshold(cpu_threshold=config.cpu_threshold).estimate(node, history, now).cpu_milli[0]
    assert reactive == 10_000 * 85 // 100 - 1000
    assert forecast <= 10_000 * 0.85 - 6000
    assert forecast < reactive


def test_the_stable_part_anticipates_the_peak_of_the_next_day() -> None:
    history = UsageHistory(1)
    now = 2 * DAY_S + 10 * HOUR  # ten hours before the peak: outside the look-ahead, inside the day
    replay(history, 0, now + 1, 60, daily_peak_usage)
    lent = Forecast().estimate(one_node(10_000, 10_240), history, now)
    assert lent.stable_cpu_milli[0] <= 10_000 * 0.85 - 6000
    assert lent.cpu_milli[0] > lent.stable_cpu_milli[0]


def test_a_rising_trend_raises_the_forecast_above_the_last_sample() -> None:
    rising = UsageHistory(1)
    replay(rising, 0, HOUR + 1, 10, lambda t: (1000 + int(t), 2048))
    flat = steady(1000 + HOUR, 2048, until_s=HOUR + 1)
    estimator = Forecast()
    last = float(rising.last[0, 0])
    assert estimator.forecast_peak(flat, 0, HOUR, HOUR)[0] == last
    # The load rises 1 milli-CPU per second; over the look-ahead the trend adds at least half of that.
    assert estimator.forecast_peak(rising, 0, HOUR, HOUR)[0] > last + 0.5 * estimator.config.horizon_s


def test_a_falling_trend_does_not_lower_the_forecast_below_the_recent_peak() -> None:
    falling = UsageHistory(1)
    replay(falling, 0, HOUR + 1, 10, lambda t: (5000 - int(t), 2048))
    recent_peak = float(falling.peak(0, HOUR - Forecast().config.recent_s, HOUR)[0])
    assert Forecast().forecast_peak(falling, 0, HOUR, HOUR)[0] >= recent_peak


def stretch_config(offline_cpu_usage: float) -> ForecastConfig:
    return ForecastConfig(offline_cpu_usage=offline_cpu_usage, stretch_max=0.25, cpu_per_gib=0.5)


def test_stretch_gives_cpu_towards_leftover_memory_bounded_by_stretch_max() -> None:
    cpu = np.array([4000], dtype=np.int64)
    memory = np.array([16 * 1024], dtype=np.int64)  # matches 8 cores at 0.5 core per GiB
    assert Forecast(stretch_config(0.5)).stretch(cpu, memory).tolist() == [5000]


def test_stretch_is_bounded_by_what_offline_containers_really_use() -> None:
    cpu = np.array([4000], dtype=np.int64)
    memory = np.array([16 * 1024], dtype=np.int64)
    assert Forecast(stretch_config(0.9)).stretch(cpu, memory).tolist() == [math.floor(4000 / 0.9)]


def test_nothing_is_stretched_when_offline_containers_use_all_they_ask() -> None:
    cpu = np.array([4000], dtype=np.int64)
    assert Forecast(stretch_config(1.0)).stretch(cpu, np.array([64 * 1024])).tolist() == [4000]


def test_cpu_is_not_stretched_when_memory_is_the_bottleneck() -> None:
    cpu = np.array([4000], dtype=np.int64)
    assert Forecast(stretch_config(0.5)).stretch(cpu, np.array([2048])).tolist() == [4000]


@given(st.integers(0, 200_000), st.integers(0, 1_000_000), st.floats(0.05, 1.0), st.floats(0.0, 1.0))
def test_stretch_stays_within_its_bounds(cpu: int, memory: int, usage: float, stretch_max: float) -> None:
    config = ForecastConfig(offline_cpu_usage=usage, stretch_max=stretch_max)
    out = int(Forecast(config).stretch(np.array([cpu], dtype=np.int64), np.array([memory], dtype=np.int64))[0])
    assert cpu <= out <= max(cpu, math.floor(min(cpu / usage, cpu * (1 + stretch_max))))


def test_memory_is_never_stretched() -> None:
    history = steady(1000, 1024, until_s=HOUR)
    node = one_node(10_000, 100 * 1024)
    plain = Forecast(stretch_config(1.0)).estimate(node, history, HOUR - 10)
    stretched = Forecast(stretch_config(0.5)).estimate(node, history, HOUR - 10)
    assert stretched.memory_mib.tolist() == plain.memory_mib.tolist()
    assert stretched.cpu_milli[0] > plain.cpu_milli[0]
    assert stretched.stable_cpu_milli.tolist() == plain.stable_cpu_milli.tolist()


@pytest.mark.parametrize(
    "change",
    [{"cpu_threshold": 0.0}, {"memory_threshold": 1.5}, {"offline_cpu_usage": 0.0}, {"horizon_s": 0},
     {"stale_after_s": -1}, {"spike_factor": -0.1}, {"cpu_per_gib": 0}],
    ids=lambda change: next(iter(change)),
)
def test_an_impossible_config_is_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ForecastConfig(**change)
