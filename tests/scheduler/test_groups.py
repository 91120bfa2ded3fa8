"""Aggregation of interchangeable nodes and the exact packing of a group: merging and rounding never change
what a node can hold, and identical nodes are filled one after another."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.model import SolveStatus
from broker.scheduler import solve
from broker.scheduler.compiled import compile_problem
from broker.scheduler.groups import effective_capacity
from broker.scheduler.packing import patterns

from .builders import fleet

node_st = st.tuples(st.integers(0, 12), st.integers(0, 40), st.sampled_from([0, 100, 250, 10_000]))
class_st = st.tuples(st.integers(0, 4), st.integers(0, 8), st.sampled_from([0, 20, 100]))


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(node_st, min_size=1, max_size=3), classes=st.lists(class_st, min_size=1, max_size=3))
def test_effective_capacity_admits_exactly_the_loads_the_real_capacity_admits(
        nodes: list[tuple[int, int, int]], classes: list[tuple[int, int, int]]) -> None:
    builder = fleet()
    for i, (cpu, memory, nic) in enumerate(nodes):
        builder.node(f"n{i}", cpu=str(cpu), memory=f"{memory}Gi", nic=nic)
    for k, (cpu, memory, read) in enumerate(classes):
        builder.want(f"c{k}", count=1, cpu=str(cpu or 1), memory=f"{memory}Gi", read_mbps=read)
    compiled = compile_problem(builder.build())
    effective = effective_capacity(compiled)
    for load in itertools.product(range(4), repeat=compiled.n_classes):
        used = np.array(load) @ compiled.need
        assert ((used <= compiled.cap).all(axis=1) == (used <= effective).all(axis=1)).all()


def test_nodes_differing_only_in_a_nic_budget_that_cannot_bind_form_one_group() -> None:
    problem = (fleet().node("n1", nic=10_000).node("n2", nic=25_000)
               .want("w", count=4, read_mbps=100).quota(runtime={}).build())
    assert solve(problem).groups == 1


def test_a_nic_budget_that_can_bind_keeps_nodes_apart() -> None:
    problem = (fleet().node("n1", nic=1_000).node("n2", nic=25_000)
               .want("w", count=4, read_mbps=500).quota(runtime={}).build())
    assert solve(problem).groups == 2


def test_the_bound_counts_only_whole_containers_a_node_holds() -> None:
    problem = fleet().node("n", cpu="3500m", memory="64Gi").want("w", count=5).quota(runtime={}).build()
    report = solve(problem).plan.solve
    assert report.status is SolveStatus.OPTIMAL and report.objective == report.lp_bound


def test_identical_nodes_are_filled_one_after_another_so_big_containers_leave_room_for_small_ones() -> None:
    problem = (fleet().node("n1", cpu="19", memory="200Gi").node("n2", cpu="19", memory="200Gi")
               .node("n3", cpu="19", memory="200Gi")
               .want("big", count=4, cpu="8").want("mid", count=3, cpu="6").want("small", count=2, cpu="2")
               .quota(runtime={}).build())
    compiled = compile_problem(problem)
    deals = patterns(compiled, compiled.cap[0], np.arange(3), compiled.count)
    per_node = np.zeros((3, compiled.n_classes), dtype=np.int64)
    for deal in deals:
        per_node[deal.nodes, deal.k] += deal.wanted
    assert per_node.sum(axis=0).tolist() == [4, 3, 2]  # evenly dealt, one "mid" would not fit
    assert ((per_node @ compiled.need) <= compiled.cap).all()
