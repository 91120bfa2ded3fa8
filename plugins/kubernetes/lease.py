"""Leader election through a ``coordination.k8s.io/v1`` Lease, as client-go's ``leaderelection`` does it.

Several broker replicas run; one leads (runs the control loop and writes to the clusters), the others wait.
The Lease holds ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` and
``leaseTransitions``. One round of ``try_acquire_or_renew``:

1. A candidate that believes it leads writes the renewal straight from its cached copy (one request). A 409
   Conflict means someone else wrote first, a 404 that the Lease was deleted: it re-reads and continues with
   step 2.
2. Read the Lease; create it (holding it, transitions 0) when there is none. A record that differs from the
   last one seen is remembered with the local time it was first seen (``observed_at``).
3. Another holder's lease is respected until ``observed_at + leaseDurationSeconds``: expiry is measured on the
   candidate's own clock from when it saw the record change, never by comparing ``renewTime`` with its clock,
   so clock skew between replicas cannot cut a lease short. A released lease (empty holder) is free at once.
4. Write the new record with the read ``resourceVersion`` (optimistic concurrency): renewing keeps
   ``acquireTime`` and ``leaseTransitions``; taking over sets ``acquireTime`` and adds one to
   ``leaseTransitions``. A 409 means another candidate won the race: not leading, re-read next round.

Renewing means continuing *this object's own* term: the record names this candidate **and** carries the
``leaseTransitions`` this object wrote. A record that names this identity but that this object did not write
(the replica restarted under the same pod name, or was released and comes back) is taken over like any other,
with one more transition, so that the new incarnation never shares a token with the old one.

Roles: a *follower* becomes *leader* when step 4 succeeds; a leader stays leader while each renewal succeeds,
and stops being one when a renewal finds another holder, or when it has not renewed for ``renew_deadline_s``
(shorter than the lease duration, so it stops acting before anyone else may take over), or on ``release``.

**Fencing.** ``token`` is the Lease's ``leaseTransitions`` while leading: every new leadership term has a larger
one, so a write stamped with an old token can be recognised as coming from a deposed leader (``read`` gives any
process the current holder and token). The count lives in the Lease object, so it restarts at 0 when the Lease
is deleted and created again; a store that has already seen larger tokens can have the holder move its term past
them with ``advance_token`` (one more write, conditional like every other).

``acquireTime`` / ``renewTime`` are ``MicroTime``: the API server parses them with exactly six fractional digits
(``2006-01-02T15:04:05.000000Z07:00``) and refuses the request otherwise, while ``datetime.isoformat`` drops
the fraction of a whole second and the client serialises datetimes with it; ``MicroTime`` keeps the six digits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeGuard

from kubernetes.client import CoordinationV1Api, V1Lease, V1LeaseSpec, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from broker.errors import PeerError
from plugins.kubernetes.clock import utc_now
from plugins.kubernetes.errors import peer_error

_NOT_FOUND, _CONFLICT = 404, 409


class MicroTime(datetime):
    """A UTC datetime that the client writes as ``MicroTime``: six fractional digits, always."""

    @classmethod
    def of(cls, moment: datetime) -> MicroTime:
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, UTC)

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return super().isoformat(sep, "microseconds")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What a Lease says. ``holder`` is ``""`` when nobody holds it (released or never held)."""

    holder: str
    duration_s: int
    acquired: datetime | None
    renewed: datetime | None
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, lease: V1Lease) -> LeaseRecord:
        spec = lease.spec or V1LeaseSpec()
        return cls(
            holder=spec.holder_identity or "",
            duration_s=spec.lease_duration_seconds or 0,
            acquired=spec.acquire_time,
            renewed=spec.renew_time,
            transitions=spec.lease_transitions or 0,
            resource_version=str(lease.metadata.resource_version) if lease.metadata else "",
        )


class LeaseElector:
    """One candidate for the Lease ``namespace/name``, known as ``identity`` (unique per replica, e.g. the pod
    name). Not thread-safe: one thread drives it (``run`` or the caller's own loop)."""

    def __init__(
        self,
        api: CoordinationV1Api,
        namespace: str,
        name: str,
        identity: str,
        *,
        peer: str,
        lease_duration_s: int = 15,
        renew_deadline_s: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty: an empty holderIdentity means 'released'")
        if lease_duration_s <= 0 or not 0 < renew_deadline_s < lease_duration_s:
            raise ValueError("need lease_duration_s > renew_deadline_s > 0")
        self._api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.peer = peer
        self._duration_s = lease_duration_s
        self._renew_deadline = timedelta(seconds=renew_deadline_s)
        self._clock = clock
        self._lease: V1Lease | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at: datetime | None = None
        self._renewed_at: datetime | None = None
        self._term: int | None = None
        """The ``leaseTransitions`` this object last wrote as holder: its own term (see "Renewing" above)."""
        self.last_error: PeerError | None = None

    # --- what this candidate knows ----------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """True while this candidate holds the Lease and renewed it less than ``renew_deadline_s`` ago."""
        return (
            self._holds(self._observed)
            and self._renewed_at is not None
            and self._now() - self._renewed_at < self._renew_deadline
        )

    @property
    def token(self) -> int | None:
        """The fencing token of the current term (``leaseTransitions``), or None when not leading."""
        return self._observed.transitions if self.leading and self._observed is not None else None

    def read(self) -> LeaseRecord | None:
        """The Lease as stored now (None when it does not exist); raises ``PeerError``."""
        try:
            return LeaseRecord.of(self._api.read_namespaced_lease(self.name, self.namespace))
        except ApiException as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise self._error(exc) from None
        except Exception as exc:
            raise self._error(exc) from None

    # --- one round ----------------------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One round of the protocol in the module docstring; True when this candidate leads afterwards.
        Raises ``PeerError`` for failures other than a lost race (the caller retries next round)."""
        try:
            return self._round()
        except ApiException as exc:
            raise self._error(exc) from None
        except PeerError:
            raise
        except Exception as exc:  # connection refused, reset, timeouts: the client raises urllib3 errors
            raise self._error(exc) from None

    def _round(self) -> bool:
        now = self._now()
        if self._lease is not None and self._holds(self._observed):
            try:
                return self._write(self._lease, self._observed, now)
            except ApiException as exc:
                if exc.status not in {_CONFLICT, _NOT_FOUND}:  # another writer, or the Lease was deleted: re-read
                    raise
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != _NOT_FOUND:
                raise
            return self._create(now)
        record = LeaseRecord.of(lease)
        self._lease = lease
        if record != self._observed:
            self._observed, self._observed_at = record, now
        held_by_other = record.holder not in {"", self.identity}
        expires = (self._observed_at or now) + timedelta(seconds=record.duration_s)
        if held_by_other and now < expires:
            self._renewed_at = None
            return False
        try:
            return self._write(lease, record, now)
        except ApiException as exc:
            if exc.status != _CONFLICT:
                raise
            self._renewed_at = None
            return False

    def _holds(self, record: LeaseRecord | None) -> TypeGuard[LeaseRecord]:
        """True when ``record`` is this object's own term (not merely one naming this identity)."""
        return record is not None and record.holder == self.identity and record.transitions == self._term

    def _spec(self, previous: LeaseRecord | None, now: datetime) -> V1LeaseSpec:
        renewing = self._holds(previous)
        acquired = previous.acquired if renewing and previous is not None and previous.acquired else now
        transitions = (previous.transitions if renewing else previous.transitions + 1) if previous else 0
        return V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=self._duration_s,
            acquire_time=MicroTime.of(acquired),
            renew_time=MicroTime.of(now),
            lease_transitions=transitions,
        )

    def _create(self, now: datetime) -> bool:
        body = V1Lease(metadata=V1ObjectMeta(name=self.name, namespace=self.namespace), spec=self._spec(None, now))
        try:
            created = self._api.create_namespaced_lease(self.namespace, body)
        except ApiException as exc:
            if exc.status != _CONFLICT:  # 409 AlreadyExists: another candidate created it first
                raise
            return False
        self._accept(created, now)
        return True

    def _write(self, lease: V1Lease, previous: LeaseRecord, now: datetime) -> bool:
        """Replace the Lease, conditional on ``previous.resource_version``; raises the 409 of a lost race."""
        body = lease.model_copy(update={"spec": self._spec(previous, now)})
        self._accept(self._api.replace_namespaced_lease(self.name, self.namespace, body), now)
        return True

    def _accept(self, lease: V1Lease, now: datetime) -> None:
        self._lease = lease
        self._observed, self._observed_at, self._renewed_at = LeaseRecord.of(lease), now, now
        self._term = self._observed.transitions

    def advance_token(self, minimum: int) -> bool:
        """While leading, start a new term whose ``leaseTransitions`` is ``minimum`` (when that is larger than the
        current one): what a leader does when a store it fences writes in has already seen tokens up to
        ``minimum - 1`` (the Lease was deleted and created again, or the store was fenced by another kind of
        lease). True when the Lease now carries at least ``minimum`` for this candidate; False when not leading
        or the conditional write lost a race (409: not leading, re-read next round). Raises ``PeerError`` for
        other failures."""
        if not self.leading or self._lease is None or self._observed is None:
            return False
        if self._observed.transitions >= minimum:
            return True
        now = self._now()
        spec = V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=self._duration_s,
            acquire_time=MicroTime.of(now),
            renew_time=MicroTime.of(now),
            lease_transitions=minimum,
        )
        try:
            self._accept(
                self._api.replace_namespaced_lease(
                    self.name, self.namespace, self._lease.model_copy(update={"spec": spec})
                ),
                now,
            )
        except ApiException as exc:
            if exc.status not in {_CONFLICT, _NOT_FOUND}:
                raise self._error(exc) from None
            self._renewed_at = None
            return False
        except Exception as exc:
            raise self._error(exc) from None
        return True

    # --- giving it up -------------------------------------------------------------------------------------

    def release(self) -> bool:
        """Give the Lease up so that another candidate can take it at once (client-go's ``ReleaseOnCancel``):
        the holder is cleared, ``leaseTransitions`` kept. True when released, False when not holding it or
        the write lost a race (then it was no longer ours). Raises ``PeerError`` for other failures."""
        if self._lease is None or not self._holds(self._observed):
            return False
        now = MicroTime.of(self._now())
        spec = V1LeaseSpec(
            holder_identity="",
            lease_duration_seconds=1,
            acquire_time=now,
            renew_time=now,
            lease_transitions=self._observed.transitions,
        )
        try:
            released = self._api.replace_namespaced_lease(
                self.name, self.namespace, self._lease.model_copy(update={"spec": spec})
            )
        except ApiException as exc:
            if exc.status != _CONFLICT:
                raise self._error(exc) from None
            released = None
        except Exception as exc:
            raise self._error(exc) from None
        self._renewed_at, self._term = None, None
        if released is None:
            self._lease = self._observed = None
            return False
        self._lease, self._observed, self._observed_at = released, LeaseRecord.of(released), now
        return True

    def run(self, stop: threading.Event, retry_period_s: float = 2.0) -> None:
        """Try to acquire, then renew, every ``retry_period_s`` until ``stop`` is set; release on the way out.
        Failures are kept in ``last_error`` and retried (leadership lapses after ``renew_deadline_s``)."""
        if retry_period_s <= 0:
            raise ValueError("retry_period_s must be positive")
        while not stop.is_set():
            try:
                self.try_acquire_or_renew()
                self.last_error = None
            except PeerError as exc:
                self.last_error = exc
            stop.wait(retry_period_s)
        try:
            self.release()
        except PeerError as exc:
            self.last_error = exc

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _error(self, exc: Exception) -> PeerError:
        return peer_error(self.peer, exc)


__all__ = ["LeaseElector", "LeaseRecord", "MicroTime"]
