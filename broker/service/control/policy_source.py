"""The quota policy read from an ``ElasticQuotaPolicy`` object (``policy_source.kind: kubernetes``): platform teams
edit the object with kubectl or GitOps, the leader applies it to the store, and the object says whether it was.

::

    kubectl apply ─► API server ─► PolicyWatch (list + watch, its own thread, every replica)
                                        │ every tick (min(interval_s, 1 s))
                                        ▼
    PolicySource.sync: a new spec? validate it whole (QuotaPolicy) ─► leader: PolicyLog.apply (versioned
    compare-and-set) ─► the store ─► the loop's next cycle reads it ─► runtime quota, plan
                              └─► status.conditions[Accepted]: True (observedGeneration, version) or False (field)

Rules it keeps:

- **A new spec, not a new object version.** A spec is validated when it differs from the last one seen. The
  status the broker writes (the runtime quota every cycle, this condition) moves the object's resourceVersion but
  not its spec, so it causes no re-apply. A valid spec is written to the store as a new version authored
  ``kubernetes:<cluster>/<name>@<resourceVersion>`` (``PolicyOwner.author``) on top of the version just read;
  nothing is written when the store already holds an identical policy (``PolicyLog``'s own rule).
- **The last good policy stays.** An invalid spec applies nothing: one log line naming the field,
  ``broker_policy_source_failures_total{reason="invalid"}``, and ``Accepted`` False with reason ``Invalid`` and
  the message naming the field. Likewise, the policy in force stays when the object is missing or deleted (a
  warning, ``reason="missing"``: quotas are never wiped because an object went away) and when the API server is
  down or refuses (the watch retries with a doubling delay up to 30 s; ``reason="unreachable"``, logged when
  the failure starts or changes and when it ends). A pass that fails for any other reason is logged and the next
  tick tries again: the loop never stops for the source.
- **The object is the source of truth.** While it is, the admin API and ``broker quota apply|rollback`` refuse to
  write the policy (409 / an error naming the object, ``PolicyOwner``), and a version written around that (with
  ``--force``, or through a writer that could not know yet) is put back at the next tick with a warning: the store
  converges on the object, level-triggered, like a Kubernetes controller, rather than waiting for its next edit.
- **Only the leader writes**, to the store and to the status; every replica follows the object, so the last good
  spec is known at once on failover. A replica that takes the lead checks the store and the condition afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client import CustomObjectsApi

from broker.errors import ConflictError, InputError, PeerError, PermanentPeerError
from broker.quota import QuotaPolicy
from broker.service.admin_api import PolicyOwner
from broker.service.observability.metrics import PolicySourceFailure, ServiceMetrics
from broker.store import PolicyLog
from plugins.kubernetes.policy_watch import Condition, PolicyObject, PolicyWatch

log = logging.getLogger(__name__)

ACCEPTED = "Accepted"
"""The condition's type on the object's status."""

RETRY_MAX_S = 30.0
"""The longest wait between two attempts to list or watch a failing API server."""

_UNSEEN = object()
"""The spec last evaluated, before any was."""


class PolicySource:
    """The ``ElasticQuotaPolicy`` ``owner`` (in the cluster ``custom`` talks to) as the source of the policy in
    ``policies``' store (see the module docstring). ``leading`` says whether this replica leads; ``close``
    releases the API client when ``run`` ends."""

    def __init__(self, custom: CustomObjectsApi, owner: PolicyOwner, policies: PolicyLog, metrics: ServiceMetrics,
                 leading: Callable[[], bool], *, tick_s: float, resync_s: float, timeout_s: float,
                 close: Callable[[], None]) -> None:
        self.owner = owner
        self.policies = policies
        self.metrics = metrics
        self.leading = leading
        self.tick_s = tick_s
        self._close = close
        self.objects = PolicyWatch(custom, f"kube-apiserver {owner.cluster}", request_timeout_s=timeout_s,
                                   resync_s=resync_s, retry_s=min(tick_s, RETRY_MAX_S), retry_max_s=RETRY_MAX_S,
                                   on_error=self._watch_failed)
        self._where = f"ElasticQuotaPolicy {owner.name} on cluster {owner.cluster}"
        self._spec: Any = _UNSEEN
        self._generation = 0
        self._problem: InputError | None = None
        self._policy: QuotaPolicy | None = None
        """The last valid spec's policy: what the store must hold (``None``: no valid spec seen yet)."""
        self._policy_version = ""
        self._fresh = False
        """``_policy`` is a new spec's, not yet written: its write is an apply, any later one a repair."""
        self._in_store: int | None = None
        """The store version known to hold ``_policy`` (``None``: check)."""
        self._condition: Condition | None = None
        """The condition the object is known to carry (``None``: check)."""
        self._status_error = ""
        self._leads = False
        self._seen = False
        self._missing = False
        self._failing: str | None = None
        self._lock = threading.Lock()  # ``_failing`` is set on the watch's thread

    # --- running ---------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the object and sync every ``tick_s`` until ``stop`` is set; then stop following and close."""
        self.objects.start()
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.sync, self.leading())
                except Exception:  # a bug in one pass must not end the replica's source: the next tick retries
                    log.exception("%s: a pass failed", self._where)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)
        finally:
            await asyncio.to_thread(self.objects.stop)
            self._close()

    def sync(self, leading: bool) -> None:
        """One pass (blocking: the store and the API server are called): follow the object and, when ``leading``,
        bring the store and the object's condition in line with it."""
        if leading and not self._leads:  # a new term: what the last leader did is not known here
            self._spec, self._in_store, self._condition, self._missing = _UNSEEN, None, None, False
        self._leads = leading
        self._recovered()
        if not self.objects.synced:
            return
        found = self.objects.get(self.owner.name)
        if found is None:
            self._absent()
            return
        if self._missing:
            self._missing = False
            if leading:
                log.info("%s is there again (generation %d)", self._where, found.generation)
        self._seen = True
        if found.spec != self._spec:
            self._evaluate(found)
        self._generation = found.generation
        if leading:
            version = self._enforce()
            if version is not None:
                self._report(version)

    # --- the steps -------------------------------------------------------------------------------------------

    def _evaluate(self, found: PolicyObject) -> None:
        """Validate a new spec whole; a valid one becomes the policy the store must hold."""
        self._spec = found.spec
        try:
            policy = QuotaPolicy.from_document(found.spec, "spec")
        except InputError as exc:
            self._problem = exc
            if self._leads:
                self.metrics.policy_source_failed(PolicySourceFailure.INVALID)
                log.error("%s (generation %d) is invalid; nothing applied, the last good policy stays: %s",
                          self._where, found.generation, exc, extra={"field": exc.field})
            return
        self._problem = None
        if policy != self._policy:
            self._policy, self._policy_version, self._fresh, self._in_store = policy, found.resource_version, True, None

    def _enforce(self) -> int | None:
        """Write the policy to the store unless it holds it already; the version in force (``None``: the store
        could not be read or written, or another writer came first: next tick)."""
        try:
            head = self.policies.store.head()
            if self._policy is None or head == self._in_store:
                return head
            outcome = self.policies.apply(self._policy, self.owner.author(self._policy_version), head,
                                          f"from {self._where}, generation {self._generation}")
            if outcome.written and not self._fresh:
                replaced = self.policies.version(head)
                log.warning("policy version %d by %s was not %s's; put the object's policy back as version %d",
                            head, replaced.author, self._where, outcome.record.version)
        except ConflictError:
            log.info("%s: another version was written meanwhile; applying again next tick", self._where)
            return None
        except PeerError as exc:
            self.metrics.store_error("policy_source")
            log.warning("%s not applied, the store failed (next tick tries again): %s", self._where, exc)
            return None
        if outcome.written and self._fresh:
            log.info("%s (generation %d) applied as policy version %d", self._where, self._generation,
                     outcome.record.version, extra={"policy_version": outcome.record.version})
        self._fresh, self._in_store = False, outcome.record.version
        return outcome.record.version

    def _report(self, version: int) -> None:
        """Set ``Accepted`` on the object: True with the version in force, or False naming the invalid field."""
        if self._problem is not None:
            condition = Condition(ACCEPTED, False, "Invalid", f"{self._problem}; policy version {version} stays in "
                                  "force", self._generation)
        else:
            condition = Condition(ACCEPTED, True, "Applied", f"in force as policy version {version}",
                                  self._generation)
        with self._lock:
            unreachable = self._failing is not None
        if condition == self._condition or unreachable:  # written already, or wait for the watch to recover
            return
        try:
            self.objects.write_condition(self.owner.name, condition)
        except PeerError as exc:
            self.metrics.policy_source_failed(PolicySourceFailure.STATUS)
            if exc.message != self._status_error:
                log.warning("%s: the %s condition was not written (next tick tries again): %s", self._where,
                            ACCEPTED, exc)
            self._status_error = exc.message
            return
        self._condition, self._status_error = condition, ""

    def _absent(self) -> None:
        """The object is not there: keep the policy in force; the leader says so once."""
        if self._missing:
            return
        self._missing = True
        if self._leads:
            self.metrics.policy_source_failed(PolicySourceFailure.MISSING)
            gone = "was deleted" if self._seen else "does not exist"
            log.warning("%s %s; the policy in force stays until it is created again", self._where, gone)

    # --- the watch's failures --------------------------------------------------------------------------------

    def _watch_failed(self, error: PeerError) -> None:
        """A list or watch failed (on the watch's thread): counted each time, logged when the failure changes."""
        self.metrics.policy_source_failed(PolicySourceFailure.UNREACHABLE)
        with self._lock:
            changed, self._failing = self._failing != error.message, error.message
        if changed:
            (log.error if isinstance(error, PermanentPeerError) else log.warning)(
                "%s cannot be read, the policy in force stays; retrying: %s", self._where, error)

    def _recovered(self) -> None:
        with self._lock:
            back = self._failing is not None and self.objects.error is None and self.objects.synced
            if back:
                self._failing = None
        if back:
            log.info("%s can be read again", self._where)


__all__ = ["ACCEPTED", "RETRY_MAX_S", "PolicySource"]
