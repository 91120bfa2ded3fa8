"""The engine's job lists: entries in order, dropped from anywhere, and a scan that skips blocked classes without
walking them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.sim.queues import KeyedQueue

MERGE, WALK = 0.0, math.inf
"""A scan merges the classes' lists, or walks the entries one by one: both must give the same sequence."""
both_ways = pytest.mark.parametrize("walk_per_class", [MERGE, WALK], ids=["merge", "walk"])


def queue_of(*entries: tuple[int, str], walk_per_class: float = 4.0) -> KeyedQueue[str]:
    queue: KeyedQueue[str] = KeyedQueue(walk_per_class)
    for job, key in entries:
        queue.append(job, key)
    return queue


def test_jobs_come_out_in_the_order_they_were_appended() -> None:
    queue = queue_of((5, "a"), (2, "b"), (9, "a"))
    assert list(queue) == [5, 2, 9]
    assert len(queue) == 3 and 2 in queue and 7 not in queue


def test_a_job_appended_twice_has_two_entries_each_dropped_on_its_own() -> None:
    queue: KeyedQueue[str] = KeyedQueue()
    first = queue.append(1, "a")
    queue.append(2, "b")
    second = queue.append(1, "a")
    assert list(queue) == [1, 2, 1]
    assert queue.tickets_of(1) == [first, second]
    queue.discard([first])
    assert list(queue) == [2, 1] and queue.tickets_of(1) == [second]
    queue.discard([second])
    assert 1 not in queue and queue.tickets_of(1) == []


@both_ways
def test_a_removed_job_that_comes_back_goes_to_the_back(walk_per_class: float) -> None:
    queue = queue_of((1, "a"), (2, "b"), (3, "a"), (1, "a"), walk_per_class=walk_per_class)
    queue.remove([1])
    queue.append(1, "a")
    assert list(queue) == [2, 3, 1]
    assert [job for _, job in queue.scan(lambda key: False)] == [2, 3, 1]


def test_head_is_the_front_of_the_queue() -> None:
    queue = queue_of((1, "a"), (2, "b"), (3, "c"))
    assert queue.head(2) == [1, 2]
    assert queue.head(10) == [1, 2, 3]


@both_ways
def test_scan_leaves_out_a_class_once_it_is_blocked(walk_per_class: float) -> None:
    queue = queue_of((1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "a"), walk_per_class=walk_per_class)
    blocked: set[str] = set()
    seen = []
    for _, job in queue.scan(lambda key: key in blocked):
        seen.append(job)
        if job == 2:
            blocked.add("a")  # after job 2 is handled, class "a" cannot start any more
    assert seen == [1, 2, 4]


@both_ways
def test_scan_gives_each_entry_its_ticket(walk_per_class: float) -> None:
    queue: KeyedQueue[str] = KeyedQueue(walk_per_class)
    tickets = [queue.append(job, "a") for job in (7, 8, 7)]
    assert list(queue.scan(lambda key: False)) == list(zip(tickets, [7, 8, 7], strict=True))


@both_ways
def test_scan_within_looks_only_at_the_front_of_the_queue(walk_per_class: float) -> None:
    queue = queue_of((1, "a"), (2, "b"), (3, "a"), (4, "b"), walk_per_class=walk_per_class)
    assert [job for _, job in queue.scan(lambda key: key == "a", within=3)] == [2]
    assert list(queue.scan(lambda key: False, within=0)) == []


@both_ways
def test_scan_asks_about_a_class_only_until_it_is_blocked(walk_per_class: float) -> None:
    queue = queue_of(*((job, "a" if job % 2 else "b") for job in range(1000)), walk_per_class=walk_per_class)
    asked: list[str] = []

    def blocked(key: str) -> bool:
        asked.append(key)
        return key == "a"

    assert [job for _, job in queue.scan(blocked)] == list(range(0, 1000, 2))
    assert asked.count("a") == 1


@given(
    st.lists(st.tuples(st.sampled_from(["append", "append", "discard", "remove"]), st.integers(0, 20),
                       st.integers(0, 4)), max_size=80),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 4)), max_size=6),
    st.one_of(st.none(), st.integers(0, 40)),
    st.sampled_from([MERGE, WALK, 1.0, 4.0]),
)
def test_scan_visits_exactly_what_a_walk_of_the_list_in_order_would(
        operations: list[tuple[str, int, int]], blocks: list[tuple[int, int]], within: int | None,
        walk_per_class: float) -> None:
    """``blocks``: after the n-th entry handled, class k cannot start any more."""
    queue: KeyedQueue[int] = KeyedQueue(walk_per_class)
    plain: list[tuple[int, int, int]] = []  # (ticket, job, key): the list as a plain list, the specification
    for action, job, key in operations:
        if action == "append":
            plain.append((queue.append(job, key), job, key))
        elif action == "discard" and plain:
            ticket = plain[job % len(plain)][0]
            queue.discard([ticket])
            plain = [entry for entry in plain if entry[0] != ticket]
        elif action == "remove":
            queue.remove([job])
            plain = [entry for entry in plain if entry[1] != job]
    assert list(queue) == [job for _, job, _ in plain]
    assert queue.head(5) == [job for _, job, _ in plain[:5]]

    def walk() -> list[tuple[int, int]]:
        blocked: set[int] = set()
        out = []
        for ticket, job, key in plain if within is None else plain[:within]:
            if key in blocked:
                continue
            out.append((ticket, job))
            blocked.update(k for after, k in blocks if after == len(out))
        return out

    blocked_now: set[int] = set()
    scanned = []
    for entry in queue.scan(lambda key: key in blocked_now, within=within):
        scanned.append(entry)
        blocked_now.update(k for after, k in blocks if after == len(scanned))
    assert scanned == walk()
