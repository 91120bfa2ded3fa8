"""Which replica runs the loop: an elector per kind of lease, each answering "am I leading, with which fence?".

Every replica serves the extender and the admin API; only the leader collects, plans and pushes. ``campaign`` is
called every ``renew_s``: a follower tries to take the lease, the leader renews it. The answer is the ``Fence``
(lease name and fencing token) the leader attaches to every plan it publishes, so that the store refuses a
deposed leader's late writes (see ``RedisStore.put_plan``).

A leader must also stop *acting* before another replica can start: ``valid_until`` is the monotonic time at
which the lease, as last renewed, runs out (less a margin for clock rate differences), and the loop checks it
before each push to a peer that has no fencing of its own (YARN, Kubernetes node status).

- ``SoloElector``: one replica, always leading (the embedded default; no store to share).
- ``RedisElector``: the Redis store's lease (``SET NX PX`` with a monotonically increasing token).
- ``KubernetesElector``: a ``coordination.k8s.io/v1`` Lease, through ``plugins.kubernetes.LeaseElector``; its
  token is the Lease's ``leaseTransitions``, which every new holder increments. With a shared (Redis) store the
  elector has the store adopt each new term's token before it answers "leading" (``FenceKeeper``), so plans are
  fenced exactly as with ``RedisElector``: once a successor has taken the Lease and been adopted, the store
  refuses the deposed leader's token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from broker.errors import PeerError
from broker.store.records import Fence
from broker.store.redis_store import RedisStore
from plugins.kubernetes import LeaseElector

log = logging.getLogger(__name__)

CLOCK_MARGIN = 0.2
"""Fraction of the lease a leader gives up early: clocks of two machines may run at slightly different rates."""


class Elector(Protocol):
    """See the module docstring."""

    async def campaign(self) -> Fence | None:
        """Take or renew the lease: the fence while leading, ``None`` while following (or unsure)."""
        ...

    def valid_until(self) -> float:
        """Monotonic time until which the last successful campaign lets this replica act as leader."""
        ...

    async def resign(self) -> None:
        """Give the lease up (on shutdown), so that another replica need not wait for it to expire."""
        ...


class SoloElector:
    """The only replica: always leading, with one fence for its whole life."""

    def __init__(self) -> None:
        self._fence = Fence("solo", 1)

    async def campaign(self) -> Fence | None:
        return self._fence

    def valid_until(self) -> float:
        return float("inf")

    async def resign(self) -> None:
        return None


class RedisElector:
    """The Redis store's lease. A store that cannot be reached means "not leading" once the lease, as last
    renewed, has run out: the other replicas cannot take it before then either."""

    def __init__(self, store: RedisStore, lease: str, holder: str, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.lease = lease
        self.holder = holder
        self.ttl_s = ttl_s
        self._clock = clock
        self._token: int | None = None
        self._until = float("-inf")

    async def campaign(self) -> Fence | None:
        started = self._clock()
        try:
            if self._token is not None and not await asyncio.to_thread(
                    self.store.renew_lease, self.lease, self.holder, self._token, self.ttl_s):
                log.warning("lost leadership: lease %s passed to another replica", self.lease)
                self._token = None
            if self._token is None:
                self._token = await asyncio.to_thread(self.store.acquire_lease, self.lease, self.holder, self.ttl_s)
                if self._token is not None:
                    log.info("leading: took lease %s with token %d", self.lease, self._token)
        except PeerError as exc:
            log.warning("lease %s not renewed: %s", self.lease, exc)
            return self._fence_if_valid()
        if self._token is None:
            self._until = float("-inf")
            return None
        self._until = started + self.ttl_s * (1 - CLOCK_MARGIN)
        return Fence(self.lease, self._token)

    def _fence_if_valid(self) -> Fence | None:
        if self._token is None or self._clock() >= self._until:
            self._token = None
            return None
        return Fence(self.lease, self._token)

    def valid_until(self) -> float:
        return self._until if self._token is not None else float("-inf")

    async def resign(self) -> None:
        token, self._token, self._until = self._token, None, float("-inf")
        if token is None:
            return
        try:
            await asyncio.to_thread(self.store.release_lease, self.lease, self.holder, token)
        except PeerError as exc:
            log.warning("lease %s not released (it will expire): %s", self.lease, exc)


class FenceKeeper(Protocol):
    """A store that fences writes with tokens issued elsewhere (``RedisStore``)."""

    def adopt_fence(self, lease: str, token: int) -> int:
        """Make ``token`` the newest of ``lease`` unless a larger one was seen; the newest afterwards."""
        ...


class KubernetesElector:
    """A Kubernetes Lease; its ``leaseTransitions`` count is the fencing token.

    With ``fences`` (the shared store), a new term leads only once the store has adopted its token, so that the
    loop never publishes with a fence the store would refuse, and the store refuses every earlier term's. When
    the store has seen a larger token than the Lease's (the Lease was deleted and created again, or the
    replicas elected through the store before), the leader moves its term past it on the Lease
    (``LeaseElector.advance_token``) and has that adopted: tokens keep growing across both. A store that cannot
    be reached leaves a new term not leading (it could not publish anyway) and is asked again next round."""

    def __init__(self, elector: LeaseElector, lease: str, ttl_s: float, fences: FenceKeeper | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.elector = elector
        self.lease = lease
        self.ttl_s = ttl_s
        self.fences = fences
        self._clock = clock
        self._until = float("-inf")
        self._adopted: int | None = None
        """The token the store adopted for this replica's current term (``None``: none yet)."""

    async def campaign(self) -> Fence | None:
        started = self._clock()
        try:
            leading = await asyncio.to_thread(self.elector.try_acquire_or_renew)
        except PeerError as exc:
            log.warning("lease %s not renewed: %s", self.lease, exc)
            leading = False
        token = self.elector.token
        if leading and token is not None:
            token = await self._adopt(token)
            if token is None:
                self._until = float("-inf")
                return None
            self._until = started + self.ttl_s * (1 - CLOCK_MARGIN)
            return Fence(self.lease, token)
        if self._clock() < self._until and token is not None and (self.fences is None or token == self._adopted):
            return Fence(self.lease, token)
        self._until, self._adopted = float("-inf"), None  # a later term, even one with this number, adopts again
        return None

    async def _adopt(self, token: int) -> int | None:
        """The term's token once the store has adopted it (at once without a store, or when already adopted);
        ``None`` when it could not be (store unreachable, or the Lease lost while moving past the store's)."""
        if self.fences is None or token == self._adopted:
            return token
        try:
            newest = await asyncio.to_thread(self.fences.adopt_fence, self.lease, token)
            if newest > token:
                log.warning("lease %s: the store has seen token %d, above this term's %d; moving the term past it",
                            self.lease, newest, token)
                if not await asyncio.to_thread(self.elector.advance_token, newest + 1):
                    return None
                token = newest + 1
                newest = await asyncio.to_thread(self.fences.adopt_fence, self.lease, token)
        except PeerError as exc:
            log.warning("lease %s: token %d not adopted by the store, not leading yet: %s", self.lease, token, exc)
            return None
        if newest != token:  # another term was adopted in between: this one is already deposed
            return None
        self._adopted = token
        log.info("leading: lease %s with token %d, adopted by the store", self.lease, token)
        return token

    def valid_until(self) -> float:
        return self._until

    async def resign(self) -> None:
        self._until, self._adopted = float("-inf"), None
        try:
            await asyncio.to_thread(self.elector.release)
        except PeerError as exc:
            log.warning("lease %s not released (it will expire): %s", self.lease, exc)


__all__ = ["CLOCK_MARGIN", "Elector", "FenceKeeper", "KubernetesElector", "RedisElector", "SoloElector"]
