"""Following the ``ElasticQuotaPolicy`` objects of one cluster, and telling an object whether its spec was accepted.

``PolicyWatch`` keeps a local copy of every object of the CRD (``quota.broker.io/v1alpha1``,
``elasticquotapolicies``, cluster-scoped) with the list + watch protocol of ``Informer``, on its own thread: a
watch the server ends is resumed from the last resourceVersion seen, a 410 Gone (the version was compacted away,
e.g. after an API server restart) lists again, a periodic resync lists again anyway, and a failure (the API server
down, refusing, or the CRD not installed) is retried with a doubling delay and reported to ``on_error``, while
the last copy stays readable. The collection is tiny (one object per policy), so it is watched whole rather than
through a field selector. Every request is bounded by the client's own timeout (a watch's read by its
``timeoutSeconds`` plus that), so a half-open connection cannot hang the thread for ever.

``write_condition`` sets one condition (``Accepted``) in the object's ``status.conditions``, shaped like
``metav1.Condition`` (``lastTransitionTime`` moves only when ``status`` does), through the same conditional
merge patch of the status subresource as the quota status (``StatusPatcher``): only ``conditions`` is sent, so
the runtime quota the quota-status sink writes beside it is left alone, and an unchanged condition is not written
at all (the object's watchers, this one included, stay quiet). Conditions of other types are kept.

RBAC: ``get``/``list``/``watch`` on ``elasticquotapolicies`` and ``patch`` on ``elasticquotapolicies/status``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client import CustomObjectsApi

from broker.errors import PeerError
from plugins.kubernetes.clock import utc_now
from plugins.kubernetes.informer import Informer
from plugins.kubernetes.quota_status import GROUP, MAX_MESSAGE, PLURAL, VERSION, StatusPatcher


@dataclass(frozen=True, slots=True)
class PolicyObject:
    """One ``ElasticQuotaPolicy`` as last listed or watched: what the broker reads from it."""

    name: str
    uid: str
    generation: int
    resource_version: str
    spec: Any
    """The spec as the API server holds it (``None`` when the object has none); validated by the reader."""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> PolicyObject:
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        return cls(name=str(meta.get("name", "")), uid=str(meta.get("uid", "")),
                   generation=generation if isinstance(generation, int) else 0,
                   resource_version=str(meta.get("resourceVersion", "")), spec=obj.get("spec"))


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition of the object's status (``metav1.Condition`` without its time, which the writer keeps)."""

    type: str
    status: bool
    reason: str
    message: str
    observed_generation: int

    def same_as(self, written: Mapping[str, Any]) -> bool:
        """True when ``written`` (a condition of the stored status) already says this."""
        return (written.get("status") == self.status_text and written.get("reason") == self.reason
                and written.get("message") == self.shown_message
                and written.get("observedGeneration") == self.observed_generation)

    @property
    def status_text(self) -> str:
        return "True" if self.status else "False"

    @property
    def shown_message(self) -> str:
        """The message cut to what the schema allows (the log keeps the whole of it)."""
        return self.message if len(self.message) <= MAX_MESSAGE else self.message[: MAX_MESSAGE - 3] + "..."

    def for_status(self, since: str) -> dict[str, Any]:
        return {"type": self.type, "status": self.status_text, "observedGeneration": self.observed_generation,
                "lastTransitionTime": since, "reason": self.reason, "message": self.shown_message}


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class PolicyWatch:
    """The ``ElasticQuotaPolicy`` objects of one cluster, followed on a thread (``start`` / ``stop``), and their
    ``Accepted`` condition (see the module docstring)."""

    def __init__(self, custom: CustomObjectsApi, peer: str, *, request_timeout_s: float = 5.0,
                 watch_timeout_s: int = 300, resync_s: float | None = 300.0, retry_s: float = 1.0,
                 retry_max_s: float = 30.0, on_error: Callable[[PeerError], None] | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        if request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self.peer = peer
        self._custom = custom
        self._request_timeout_s = request_timeout_s
        self._watch_timeout_s = watch_timeout_s
        self._clock = clock
        self._patcher = StatusPatcher(custom, peer, request_timeout_s=request_timeout_s)
        self._informer = Informer(self._list, peer, watch_timeout_s=watch_timeout_s, resync_s=resync_s,
                                  retry_s=retry_s, retry_max_s=retry_max_s, on_error=on_error)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _list(self, **kwargs: Any) -> Any:
        """``list_cluster_custom_object`` with a read timeout that outlasts a watch's ``timeoutSeconds``."""
        read_s = self._request_timeout_s + (self._watch_timeout_s if kwargs.get("watch") else 0)
        return self._custom.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, _request_timeout=(self._request_timeout_s, read_s), **kwargs)

    # --- following -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the objects on a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._informer.run, args=(self._stop,), name="policy-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop following: the open watch is closed at once; a list in flight ends at its request timeout."""
        self._stop.set()
        self._informer.stop_watching()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def synced(self) -> bool:
        """True once the objects were listed (before that, an absent object says nothing)."""
        return self._informer.synced.is_set()

    @property
    def error(self) -> PeerError | None:
        """The failure since the last successful list (``None`` while following)."""
        return self._informer.last_error

    def get(self, name: str) -> PolicyObject | None:
        """The object ``name`` as last seen, or ``None`` when the last list and watch say there is none."""
        found = self._informer.snapshot().get(name)
        return PolicyObject.of(found) if isinstance(found, Mapping) else None

    # --- the condition ---------------------------------------------------------------------------------------

    def write_condition(self, name: str, condition: Condition) -> bool:
        """Set ``condition`` on the object ``name``; True when a patch was sent, False when the status already
        said the same. Raises ``PeerError`` (permanent for 404: no such object)."""

        def change(status: Mapping[str, Any]) -> dict[str, Any] | None:
            conditions = status.get("conditions")
            kept = [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []
            current = next((c for c in kept if c.get("type") == condition.type), None)
            if current is not None and condition.same_as(current):
                return None
            since = current.get("lastTransitionTime") if current is not None else None
            if current is None or current.get("status") != condition.status_text or not isinstance(since, str):
                since = _rfc3339(self._clock())
            others = [dict(c) for c in kept if c.get("type") != condition.type]
            return {"conditions": [*others, condition.for_status(since)]}

        return self._patcher.patch(name, change)


__all__ = ["Condition", "PolicyObject", "PolicyWatch"]
