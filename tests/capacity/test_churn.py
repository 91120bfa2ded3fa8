"""Anti-churn: Koordinator's rule holds small changes for 300 s; the broker's shrinks at once, holds small growth."""

from __future__ import annotations

import numpy as np

from broker.capacity import BROKER_RESYNC, KOORDINATOR_RESYNC, Lendable, Published, ResyncRule, resync, resync_rule_for

from .builders import one_node

NODE = one_node(cpu_milli=10_000, memory_mib=10_000)


def lendable(cpu_milli: int, memory_mib: int = 1000, stable_cpu_milli: int = 0) -> Lendable:
    def one(v: int) -> np.ndarray:
        return np.array([v], dtype=np.int64)

    return Lendable(one(cpu_milli), one(memory_mib), one(stable_cpu_milli), one(0))


def published_at(cpu_milli: int, rule: ResyncRule, at_s: float = 0.0) -> Published:
    return resync(None, lendable(cpu_milli), NODE, at_s, rule)


def cpu_after(previous: Published, cpu_milli: int, now_s: float, rule: ResyncRule) -> int:
    return int(resync(previous, lendable(cpu_milli), NODE, now_s, rule).lendable.cpu_milli[0])


def test_the_first_estimate_is_published_as_is() -> None:
    assert published_at(1234, KOORDINATOR_RESYNC).lendable.cpu_milli.tolist() == [1234]


def test_koordinator_holds_a_small_change_before_300_s() -> None:
    assert cpu_after(published_at(1000, KOORDINATOR_RESYNC), 1050, 299, KOORDINATOR_RESYNC) == 1000


def test_koordinator_follows_a_small_change_at_300_s() -> None:
    assert cpu_after(published_at(1000, KOORDINATOR_RESYNC), 1050, 300, KOORDINATOR_RESYNC) == 1050


def test_koordinator_holds_a_small_shrink_too() -> None:
    assert cpu_after(published_at(1000, KOORDINATOR_RESYNC), 950, 10, KOORDINATOR_RESYNC) == 1000


def test_koordinator_follows_a_change_above_10_percent_at_once() -> None:
    previous = published_at(1000, KOORDINATOR_RESYNC)
    assert cpu_after(previous, 1101, 10, KOORDINATOR_RESYNC) == 1101
    assert cpu_after(previous, 899, 10, KOORDINATOR_RESYNC) == 899


def test_koordinator_measures_change_from_zero_against_capacity() -> None:
    previous = published_at(0, KOORDINATOR_RESYNC)
    assert cpu_after(previous, 900, 10, KOORDINATOR_RESYNC) == 0
    assert cpu_after(previous, 1100, 10, KOORDINATOR_RESYNC) == 1100


def test_broker_shrinks_at_once_however_small_the_change() -> None:
    assert cpu_after(published_at(5000, BROKER_RESYNC), 4999, 1, BROKER_RESYNC) == 4999


def test_broker_holds_small_growth_until_60_s() -> None:
    previous = published_at(5000, BROKER_RESYNC)
    assert cpu_after(previous, 5400, 59, BROKER_RESYNC) == 5000
    assert cpu_after(previous, 5400, 60, BROKER_RESYNC) == 5400


def test_broker_follows_growth_above_5_percent_of_capacity_at_once() -> None:
    assert cpu_after(published_at(5000, BROKER_RESYNC), 5501, 1, BROKER_RESYNC) == 5501


def test_a_held_value_keeps_its_age_so_it_expires_on_time() -> None:
    first = published_at(1000, KOORDINATOR_RESYNC)
    held = resync(first, lendable(1050), NODE, 200, KOORDINATOR_RESYNC)
    assert held.cpu_at_s.tolist() == [0.0]
    assert cpu_after(held, 1050, 300, KOORDINATOR_RESYNC) == 1050


def test_the_stable_part_never_exceeds_the_published_total() -> None:
    previous = resync(None, lendable(5000, stable_cpu_milli=5000), NODE, 0, BROKER_RESYNC)
    shrunk = resync(previous, lendable(3000, stable_cpu_milli=3000), NODE, 1, KOORDINATOR_RESYNC)
    held = resync(shrunk, lendable(3000, stable_cpu_milli=9000), NODE, 2, KOORDINATOR_RESYNC)
    for publication in (shrunk, held):
        assert publication.lendable.stable_cpu_milli[0] <= publication.lendable.cpu_milli[0]


def test_memory_and_cpu_resync_independently() -> None:
    previous = published_at(1000, BROKER_RESYNC)
    after = resync(previous, lendable(1100, memory_mib=100), NODE, 1, BROKER_RESYNC)
    assert after.lendable.cpu_milli.tolist() == [1000]
    assert after.lendable.memory_mib.tolist() == [100]


def test_only_the_broker_estimator_is_published_with_the_broker_rule() -> None:
    assert resync_rule_for("broker") is BROKER_RESYNC
    for name in ("online-only", "static", "usage-threshold"):
        assert resync_rule_for(name) is KOORDINATOR_RESYNC
