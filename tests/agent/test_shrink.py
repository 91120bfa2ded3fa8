"""The fast path's rule: shrink a node's offline capacity to what live online usage leaves, and pick victims by the
guard's kill score so that offline usage fits."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.capacity.forecast import ForecastConfig
from broker.capacity.shrink import Shrink, ShrinkConfig, Victim, shrink_node
from broker.model import NodePlan, Resources, Sink

CAPACITY = Resources.exact(cpu_milli=10_000, memory_mib=10_000)
"""10 cores, 10,000 MiB: safe limit 8,500m / 9,000 MiB, margin 250m / 250 MiB by default."""


@dataclass(frozen=True)
class Box:
    """A running offline container as the rule sees it."""

    container: str
    cpu_milli: int
    memory_mib: int
    started_s: float = 0.0
    is_am: bool = False
    sink: Sink = Sink.YARN


def res(cpu: int, memory: int) -> Resources:
    return Resources.exact(cpu_milli=cpu, memory_mib=memory)


def test_defaults_are_the_estimators_safe_limit() -> None:
    forecast = ForecastConfig()
    assert ShrinkConfig() == ShrinkConfig.from_forecast(forecast)
    assert ShrinkConfig().room(CAPACITY, res(0, 0)) == res(8_250, 8_750)


def test_a_node_under_its_limit_keeps_its_capacity_and_kills_nothing() -> None:
    decision = shrink_node(CAPACITY, res(3_000, 3_000), [Box("c1", 1_000, 1_000)], res(4_000, 4_000), res(1_000, 0))
    assert decision == Shrink(False, res(4_000, 4_000), res(1_000, 0), (), res(5_250, 5_750))


def test_an_online_spike_shrinks_both_sinks_in_proportion() -> None:
    # room = 8500 - 6000 - 250 = 2250m of the 4000m lent (3000 yarn : 1000 kubernetes); memory untouched.
    decision = shrink_node(CAPACITY, res(6_000, 1_000), [], res(3_000, 2_000), res(1_000, 2_000))
    assert decision.over
    assert decision.yarn == res(1_687, 2_000)
    assert decision.kubernetes == res(562, 2_000)
    assert decision.victims == ()


def test_other_dimensions_are_left_alone() -> None:
    yarn = Resources.exact(cpu_milli=4_000, memory_mib=1_000, disk_gib=100, network_mbps=500, gpu=1)
    decision = shrink_node(CAPACITY, res(8_000, 0), [], yarn, res(0, 0))
    assert decision.yarn == Resources.exact(cpu_milli=250, memory_mib=1_000, disk_gib=100, network_mbps=500, gpu=1)
    assert decision.kubernetes == res(0, 0)


def test_victims_are_the_newest_workers_until_usage_fits() -> None:
    offline = [Box("old", 1_000, 2_000, started_s=10), Box("new", 1_000, 2_000, started_s=30),
               Box("mid", 1_000, 2_000, started_s=20)]
    # room memory = 9000 - 5000 - 250 = 3750; usage 6000 -> 2250 over: two workers, the newest first.
    decision = shrink_node(CAPACITY, res(1_000, 5_000), offline, res(3_000, 6_000), res(0, 0))
    assert decision.victims == (Victim(Sink.YARN, "new"), Victim(Sink.YARN, "mid"))
    assert decision.yarn == res(3_000, 3_750)


def test_an_am_dies_only_after_every_worker_even_an_idle_one() -> None:
    offline = [Box("am", 2_000, 1_000, started_s=50, is_am=True), Box("busy", 1_000, 1_000, started_s=10),
               Box("idle", 0, 1_000, started_s=5, sink=Sink.KUBERNETES)]
    # room cpu = 8500 - 7000 - 250 = 1250; usage 3000 -> 1750 over: the busy worker frees 1000, the AM is needed.
    decision = shrink_node(CAPACITY, res(7_000, 0), offline, res(3_000, 3_000), res(0, 0))
    assert decision.victims == (Victim(Sink.YARN, "busy"), Victim(Sink.KUBERNETES, "idle"), Victim(Sink.YARN, "am"))


def test_usage_above_the_lent_capacity_but_within_the_room_is_left_alone() -> None:
    # A CPU burst of throttled offline work: 3000m used of 2000m lent, but online leaves 5250m. Memory triggers.
    decision = shrink_node(CAPACITY, res(3_000, 8_000), [Box("c1", 3_000, 500)], res(2_000, 1_000), res(0, 0))
    assert decision.over
    assert decision.yarn == res(2_000, 750)
    assert decision.victims == ()


def test_the_decision_applies_to_the_nodes_plan() -> None:
    node = NodePlan(node="n1", site="s", cluster="c", yarn=res(3_000, 2_000), kubernetes=res(1_000, 2_000))
    decision = shrink_node(CAPACITY, res(6_000, 1_000), [], node.yarn, node.kubernetes)
    shrunk = decision.applied_to(node)
    assert (shrunk.yarn, shrunk.kubernetes, shrunk.node) == (decision.yarn, decision.kubernetes, "n1")


@pytest.mark.parametrize("field", ["cpu_threshold", "memory_threshold", "margin_fraction"])
def test_a_config_out_of_range_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ShrinkConfig(**{field: 1.5})


# --- properties -------------------------------------------------------------------------------------------------

amounts = st.integers(0, 12_000)
boxes = st.lists(
    st.builds(Box, container=st.uuids().map(str), cpu_milli=st.integers(0, 4_000), memory_mib=st.integers(0, 4_000),
              started_s=st.floats(0, 1e6), is_am=st.booleans(), sink=st.sampled_from(Sink)),
    max_size=12,
    unique_by=lambda b: b.container,
)


def _decide(online: Resources, offline: list[Box], yarn: Resources, kubernetes: Resources) -> Shrink:
    return shrink_node(CAPACITY, online, offline, yarn, kubernetes)


@given(st.builds(res, amounts, amounts), boxes, st.builds(res, amounts, amounts), st.builds(res, amounts, amounts))
def test_capacity_never_grows(online: Resources, offline: list[Box], yarn: Resources, kubernetes: Resources) -> None:
    decision = _decide(online, offline, yarn, kubernetes)
    assert decision.yarn.fits_in(yarn) and decision.kubernetes.fits_in(kubernetes)
    if decision.over:
        assert (decision.yarn + decision.kubernetes).fits_in(decision.room)


@given(st.builds(res, amounts, amounts), boxes, st.builds(res, amounts, amounts), st.builds(res, amounts, amounts))
def test_no_am_dies_while_a_worker_survives(online: Resources, offline: list[Box], yarn: Resources,
                                            kubernetes: Resources) -> None:
    victims = {v.container for v in _decide(online, offline, yarn, kubernetes).victims}
    if any(b.is_am and b.container in victims for b in offline):
        assert all(b.container in victims for b in offline if not b.is_am)


@given(st.builds(res, amounts, amounts), boxes, st.builds(res, amounts, amounts), st.builds(res, amounts, amounts))
def test_after_the_victims_offline_usage_fits_or_nothing_left_could_help(
        online: Resources, offline: list[Box], yarn: Resources, kubernetes: Resources) -> None:
    decision = _decide(online, offline, yarn, kubernetes)
    victims = {v.container for v in decision.victims}
    left = [b for b in offline if b.container not in victims]
    over_cpu = sum(b.cpu_milli for b in left) - decision.room.cpu_milli
    over_memory = sum(b.memory_mib for b in left) - decision.room.memory_mib
    if over_cpu > 0:
        assert all(b.cpu_milli == 0 for b in left)
    if over_memory > 0:
        assert all(b.memory_mib == 0 for b in left)


@given(st.builds(res, amounts, amounts), boxes, st.builds(res, amounts, amounts), st.builds(res, amounts, amounts))
def test_under_the_limit_nothing_changes(online: Resources, offline: list[Box], yarn: Resources,
                                         kubernetes: Resources) -> None:
    room = ShrinkConfig().room(CAPACITY, online)
    used = res(sum(b.cpu_milli for b in offline), sum(b.memory_mib for b in offline))
    decision = _decide(online, offline, yarn, kubernetes)
    if (yarn + kubernetes).max(used).fits_in(room):
        assert decision == Shrink(False, yarn, kubernetes, (), room)
    else:
        assert decision.over
