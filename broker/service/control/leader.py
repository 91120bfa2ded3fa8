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
- ``KubernetesElector``: a ``coordination.k8s.io/v1`` Lease, through ``plugins.kubernetes.LeaseElector``.
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


class KubernetesElector:
    """A Kubernetes Lease; its ``leaseTransitions`` count is the fencing token."""

    def __init__(self, elector: LeaseElector, lease: str, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.elector = elector
        self.lease = lease
        self.ttl_s = ttl_s
        self._clock = clock
        self._until = float("-inf")

    async def campaign(self) -> Fence | None:
        started = self._clock()
        try:
            leading = await asyncio.to_thread(self.elector.try_acquire_or_renew)
        except PeerError as exc:
            log.warning("lease %s not renewed: %s", self.lease, exc)
            leading = False
        token = self.elector.token
        if leading and token is not None:
            self._until = started + self.ttl_s * (1 - CLOCK_MARGIN)
            return Fence(self.lease, token)
        if self._clock() < self._until and token is not None:
            return Fence(self.lease, token)
        self._until = float("-inf")
        return None

    def valid_until(self) -> float:
        return self._until

    async def resign(self) -> None:
        self._until = float("-inf")
        try:
            await asyncio.to_thread(self.elector.release)
        except PeerError as exc:
            log.warning("lease %s not released (it will expire): %s", self.lease, exc)


__all__ = ["CLOCK_MARGIN", "Elector", "KubernetesElector", "RedisElector", "SoloElector"]
