"""Prioritize: nodes the plan reserved for the pod's team and class first, then tighter packing; 0..10."""

from __future__ import annotations

from random import Random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.model import Resources
from broker.service.extender import Extender, Verb, build_tables
from broker.service.extender.filtering import PodKind
from broker.service.extender.scoring import MAX_SCORE, score_nodes
from broker.service.extender.tables import NodeEntry, PlanTables

from .builders import filter_body, node, plan, pod, team


def scores(extender: Extender, body: bytes) -> dict[str, int]:
    reply = extender.handle(Verb.PRIORITIZE, body)
    assert reply.status == 200
    return {s["Host"]: s["Score"] for s in orjson.loads(reply.body)}


def test_class_reservation_beats_team_reservation_beats_none(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[
                node("class").places("team-a", "exec"),
                node("team").places("team-a", "other"),
                node("none").places("team-b", "exec"),
            ],
            teams=[team("team-a"), team("team-b")],
        )
    )
    got = scores(extender, filter_body(pod("p").batch().of_class("exec"), ["class", "team", "none", "ghost"]))
    assert got["class"] > got["team"] > got["none"] == got["ghost"] == 0


def test_tighter_nodes_score_higher_among_equally_reserved(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[
                node("tight").batch(cpu="2", memory="8Gi").places("team-a", "exec"),
                node("loose").batch(cpu="32", memory="128Gi").places("team-a", "exec"),
            ],
            teams=[team("team-a")],
        )
    )
    got = scores(extender, filter_body(pod("p").batch(1000), ["tight", "loose"]))
    assert got["tight"] == 10 and got["loose"] == 6


def test_online_pods_score_zero_everywhere(extender: Extender) -> None:
    extender.install(plan(nodes=[node("n1").places("team-a", "exec")], teams=[team("team-a")]))
    online = {"metadata": {"name": "web", "namespace": "team-a"}}
    assert scores(extender, filter_body(online, ["n1"])) == {"n1": 0}


@settings(max_examples=60, deadline=None)
@given(
    capacities=st.lists(st.tuples(st.integers(0, 64_000), st.integers(0, 256_000)), min_size=1, max_size=12),
    shape=st.tuples(st.integers(0, 8_000), st.integers(0, 32_000)),
    classed=st.booleans(),
)
def test_scores_stay_within_0_and_10(
    capacities: list[tuple[int, int]], shape: tuple[int, int], classed: bool
) -> None:
    nodes = [
        node(f"n{i}").batch(cpu=f"{c}m", memory=f"{m}Mi").places("team-a", "exec")
        for i, (c, m) in enumerate(capacities)
    ]
    tables = build_tables(plan(nodes=nodes, teams=[team("team-a")]))
    kind = PodKind("team-a", "exec" if classed else None, False, False, Resources.exact(*shape))
    names = [f"n{i}" for i in range(len(capacities))] + ["ghost"]
    memo: dict[str, int] = {}
    result = score_nodes(names, tables, kind, memo)
    assert len(result) == len(names) and result[-1] == 0
    assert all(0 <= score <= MAX_SCORE for score in result)
    assert score_nodes(names, tables, kind, memo) == result  # answered from the memo alike


def reference_scores(names: list[str], tables: PlanTables, kind: PodKind) -> list[int]:
    """The scoring rule as the module docstring states it, written plainly over ``Resources``."""
    def reservation(entry: NodeEntry) -> int:
        slots = (entry.class_slots.get((kind.team, kind.demand_class), 0) if kind.demand_class is not None
                 else entry.role_slots.get((kind.team, kind.is_am), 0))
        return 6 if slots else 3 if kind.team in entry.teams else 0

    entries = [tables.nodes.get(name) for name in names]
    rooms = [kind.shape.count_in(e.capacity) for e in entries if e is not None]
    loosest, tightest = (max(rooms), min(rooms)) if rooms else (0, 0)
    out = []
    for e in entries:
        if e is None:
            out.append(0)
            continue
        room = kind.shape.count_in(e.capacity)
        packing = 4 * (loosest - room) // (loosest - tightest) if loosest > tightest else 0
        out.append(reservation(e) + packing)
    return out


@settings(max_examples=80, deadline=None)
@given(
    layout=st.lists(
        st.tuples(
            st.integers(0, 64), st.integers(0, 256),
            st.sampled_from(["team-a", "team-b"]), st.sampled_from(["exec", "other"]), st.booleans(),
        ),
        min_size=1, max_size=10,
    ),
    shape=st.tuples(st.integers(0, 8_000), st.integers(0, 32_000)),
    demand_class=st.sampled_from(["exec", "other", None]),
    is_am=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_scores_follow_the_stated_rule(
    layout: list[tuple[int, int, str, str, bool]],
    shape: tuple[int, int],
    demand_class: str | None,
    is_am: bool,
    order: Random,
) -> None:
    nodes = [
        node(f"n{i}").batch(cpu=str(c), memory=f"{m}Gi").places(t, k, is_am=am)
        for i, (c, m, t, k, am) in enumerate(layout)
    ]
    tables = build_tables(plan(nodes=nodes, teams=[team("team-a"), team("team-b")]))
    kind = PodKind("team-a", demand_class, is_am, False, Resources.exact(*shape))
    names = [f"n{i}" for i in range(len(layout))] + ["ghost"]
    order.shuffle(names)
    assert score_nodes(names, tables, kind, {}) == reference_scores(names, tables, kind)
