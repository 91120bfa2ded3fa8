"""The engine's job lists: in order, indexed by class, so that a step does not walk thousands of jobs.

When the fleet is full (every evening peak) thousands of jobs wait for their AM and over a thousand running jobs
want more workers, and every step the engine walks both lists in order looking for the jobs that can start
something. Almost all of them belong to a few classes that cannot (their workers' shape fits nowhere any more this
step, their team is at its quota, the plan holds no slot for them), and a class that cannot start stays so for the
rest of the walk: capacity, quota room and free slots only shrink while containers start. ``KeyedQueue.scan``
therefore walks a list in order one class at a time, merged by position, and drops a class for the rest of the
walk the first time it is blocked: a step costs what it starts plus a heap over the classes, not the length of the
list, and it visits the unblocked entries in exactly the order a plain walk would. It starts as that plain walk
and switches to the merge only once it has passed over enough entries to pay for it: callers often stop at the
first entry they are given, and trace-driven demand has nearly one class per job, where the heap would cost more
than the walk it saves.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedQueue(Generic[K]):
    """Entries, each a job index and its class key under a ticket, in the order they were appended (which is
    ticket order). A job may have more than one entry; each is dropped by its ticket.

    The queue must not change while a ``scan`` runs: callers collect what to drop and ``discard`` it afterwards.
    ``walk_per_class``: how many entries of left-out classes per class ``scan`` passes over one by one before it
    merges the classes' lists instead (both give the same sequence; only the cost differs).
    """

    def __init__(self, walk_per_class: float = 4.0) -> None:
        self.walk_per_class = walk_per_class
        self._jobs: dict[int, int] = {}  # ticket -> job; dicts keep insertion order, which is ticket order
        self._by_key: dict[K, dict[int, int]] = {}  # key -> {ticket: job}, each in ticket order
        self._key: dict[int, K] = {}  # ticket -> key
        self._tickets: dict[int, list[int]] = {}  # job -> its tickets
        self._next = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[int]:
        """The jobs of every entry, in order (a job with two entries comes twice)."""
        return iter(self._jobs.values())

    def __contains__(self, job: int) -> bool:
        return job in self._tickets

    def append(self, job: int, key: K) -> int:
        """A new entry for ``job`` (of class ``key``) at the back; returns its ticket."""
        ticket = next(self._next)
        self._jobs[ticket] = job
        self._key[ticket] = key
        self._by_key.setdefault(key, {})[ticket] = job
        self._tickets.setdefault(job, []).append(ticket)
        return ticket

    def tickets_of(self, job: int) -> list[int]:
        """The tickets of ``job``'s entries, oldest first (empty when it has none)."""
        return self._tickets.get(job, [])

    def discard(self, tickets: Iterable[int]) -> None:
        """Drop the entries with these tickets, wherever they stand."""
        for ticket in tickets:
            job = self._jobs.pop(ticket)
            key = self._key.pop(ticket)
            same = self._by_key[key]
            del same[ticket]
            if not same:
                del self._by_key[key]
            mine = self._tickets[job]
            mine.remove(ticket)
            if not mine:
                del self._tickets[job]

    def remove(self, jobs: Iterable[int]) -> None:
        """Drop every entry of these jobs."""
        self.discard([ticket for job in jobs for ticket in self.tickets_of(job)])

    def head(self, n: int) -> list[int]:
        """The jobs of the first ``n`` entries, in order."""
        return list(itertools.islice(self._jobs.values(), n))

    def scan(self, blocked: Callable[[K], bool], within: int | None = None) -> Iterator[tuple[int, int]]:
        """``(ticket, job)`` of the entries in order, leaving out every class from the first time ``blocked(key)``
        is true (it is asked again for each entry, after the caller has handled the previous one, until it is);
        with ``within``, only among the first ``within`` entries.

        It walks the entries one by one, which costs nothing to start (a caller often stops at the first entry it
        is given); once it has passed over more entries of left-out classes than ``walk_per_class`` per class, it
        merges the remaining classes' lists instead (see the module docstring)."""
        left_out: set[K] = set()
        passed_over_limit = self.walk_per_class * len(self._by_key)
        passed_over = 0
        entries: Iterable[tuple[int, int]] = self._jobs.items()
        if within is not None:
            entries = itertools.islice(entries, within)
        for ticket, job in entries:
            key = self._key[ticket]
            if key in left_out:
                passed_over += 1
                if passed_over > passed_over_limit:
                    yield from self._merge(blocked, left_out, ticket, within)
                    return
                continue
            if blocked(key):
                left_out.add(key)
                continue
            yield ticket, job

    def _merge(self, blocked: Callable[[K], bool], left_out: set[K], after: int,
               within: int | None) -> Iterator[tuple[int, int]]:
        """The rest of ``scan`` after ticket ``after``: the lists of the classes not left out, merged by ticket."""
        last = None
        if within is not None:
            last = list(itertools.islice(self._jobs, within))[-1]
        heap: list[tuple[int, int, K, Iterator[tuple[int, int]]]] = []
        for key, same in self._by_key.items():
            if key in left_out:
                continue
            items = iter(same.items())
            for ticket, job in items:  # past the entries the walk already gave out
                if ticket > after:
                    heap.append((ticket, job, key, items))
                    break
        heapq.heapify(heap)
        while heap:
            ticket, job, key, items = heap[0]
            if last is not None and ticket > last:
                return
            if blocked(key):
                heapq.heappop(heap)
                continue
            yield ticket, job
            following = next(items, None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (*following, key, items))


__all__ = ["KeyedQueue"]
