"""The published plan inside one replica, and the feed that hands each new plan to its extender.

``PlanBoard`` holds the newest plan this replica knows and wakes whoever waits for a newer one. The leader
puts its own plans on it the moment they are stored; on every replica, ``StoreFeed`` also polls the shared store
and puts on the board any newer plan it finds there (a follower's only source, and how a replica that just lost
or won leadership catches up). ``BoardPlanSource`` turns the board into the extender's ``PlanSource``.

The board hands the extender the validated ``Plan`` object itself, not a document: the leader publishes a new
5,000-node plan every second, and turning it into JSON-like data only for the extender to check it again cost
the replica's one core some 70 ms a plan (docs/benchmarks/service.md).

A store that cannot be read is reported and polled again: the extender meanwhile answers from the last plan,
which turns stale (``/readyz`` says so) once it is older than the extender's ``max_plan_age_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import orjson

from broker.errors import PeerError
from broker.model import Plan
from broker.service.extender import PlanUpdate
from broker.store.records import StoredPlan

log = logging.getLogger(__name__)


class PlanBoard:
    """The newest plan of this replica (see the module docstring). Single event loop; not thread-safe."""

    def __init__(self) -> None:
        self._plan: Plan | None = None
        self._storing = 0
        self._changed = asyncio.Event()

    @property
    def plan(self) -> Plan | None:
        return self._plan

    @property
    def version(self) -> int:
        return self._plan.version if self._plan is not None else 0

    @property
    def known(self) -> int:
        """The newest version this replica has, or is storing itself (``storing``)."""
        return max(self.version, self._storing)

    @contextlib.contextmanager
    def storing(self, version: int) -> Iterator[None]:
        """While the leader stores ``version``: the store feed then does not fetch, decode and validate the
        leader's own plan back from the store in the moment between the store's write and ``put`` (a
        5,000-node plan costs the replica's core the best part of a second to validate)."""
        self._storing = version
        try:
            yield
        finally:
            self._storing = 0

    def put(self, plan: Plan) -> bool:
        """Make ``plan`` current if it is newer than the current one; ``False`` (nothing changed) otherwise."""
        if self._plan is not None and plan.version <= self._plan.version:
            return False
        self._plan = plan
        self._changed.set()
        return True

    async def plans(self) -> AsyncIterator[Plan]:
        """The current plan (when there is one), then each newer one, forever."""
        seen = 0
        while True:
            if self._plan is not None and self._plan.version > seen:
                seen = self._plan.version
                yield self._plan
                continue
            self._changed.clear()
            await self._changed.wait()


class BoardPlanSource:
    """The board as the extender's ``PlanSource``."""

    def __init__(self, board: PlanBoard) -> None:
        self.board = board

    def describe(self) -> str:
        return "the control loop"

    async def updates(self) -> AsyncIterator[PlanUpdate]:
        async for plan in self.board.plans():
            yield plan


class StoreFeed:
    """Polls the stored plan's version every ``poll_s`` (``version``: cheap) and, only when it is newer than the
    board's, fetches it (``read``) and puts it on the board."""

    def __init__(self, board: PlanBoard, version: Callable[[], int], read: Callable[[], StoredPlan | None],
                 poll_s: float = 0.25, on_error: Callable[[PeerError], None] | None = None) -> None:
        self.board = board
        self.version = version
        self.read = read
        self.poll_s = poll_s
        self.on_error = on_error
        self.healthy = True

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_s)

    def _newer(self, known: int) -> Plan | None:
        """The stored plan when it is newer than ``known``, decoded and validated (off the event loop: a
        5,000-node plan takes a good part of a second to validate)."""
        if self.version() <= known:
            return None
        stored = self.read()
        if stored is None or stored.version <= known:
            return None
        try:
            return Plan.model_validate(orjson.loads(stored.plan_json))
        except (orjson.JSONDecodeError, ValueError) as exc:
            log.error("stored plan v%d is not a valid plan, ignored: %s", stored.version, exc)
            return None

    async def poll_once(self) -> None:
        try:
            newer = await asyncio.to_thread(self._newer, self.board.known)
        except PeerError as exc:
            if self.healthy:
                log.warning("store not readable, the extender keeps the last plan: %s", exc)
            self.healthy = False
            if self.on_error is not None:
                self.on_error(exc)
            return
        if not self.healthy:
            log.info("store readable again")
        self.healthy = True
        if newer is not None:
            self.board.put(newer)


__all__ = ["BoardPlanSource", "PlanBoard", "StoreFeed"]
