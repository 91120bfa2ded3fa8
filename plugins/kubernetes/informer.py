"""A local copy of one kind of object (nodes, pods) of one cluster, kept by list + watch.

The protocol is the API server's: a *list* returns the objects and the collection's ``resourceVersion``; a
*watch* from that version streams ``ADDED`` / ``MODIFIED`` / ``DELETED`` events (each object carrying its new
``resourceVersion``) until the server ends it after ``timeoutSeconds``; the next watch resumes from the last
version seen, so nothing is missed and nothing is listed twice. When the server no longer has that version
(etcd compacted it, typically after a long disconnect or an API server restart) it answers the watch with an
``ERROR`` event holding a ``Status`` with code 410 (Gone); the only correct recovery is a new list. A periodic
resync (``resync_s``) lists again even without an error, which repairs a copy that drifted for any other
reason. Other failures are retried after ``retry_s``, doubling up to ``retry_max_s`` until a list succeeds again.

Typed collections (``CoreV1Api.list_node``) give the client's models; custom objects
(``CustomObjectsApi.list_cluster_custom_object``) give plain dicts, since the client has no model for them: both
are followed alike.

An optional ``transform`` is applied to every object before it is stored, from lists and watch events alike
(client-go's ``SetTransform``): a copy of 100,000 pods as sent is over a gigabyte, and a reader that needs a
dozen fields of each can keep just those. The key and the ``resourceVersion`` are read from the object as
received, so a transform may drop them. A list call may give its items as an iterator (a list decoded as it
arrives, so that the whole response is never held at once): each item is transformed as it comes, and the
list's ``resourceVersion`` is read once the items are.

The copy is replaced or updated under a lock, so readers on other threads (``snapshot``) see a consistent
mapping. The informer runs on its own thread (``run``); the official client is synchronous.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from broker.errors import PeerError
from plugins.kubernetes.errors import peer_error

_GONE = 410


def _meta(obj: Any, field: str, attribute: str) -> Any:
    """A metadata field of a typed object (``attribute``) or of a custom object, a dict (``field``)."""
    if isinstance(obj, Mapping):
        return (obj.get("metadata") or {}).get(field)
    return getattr(obj.metadata, attribute)


def object_key(obj: Any) -> str:
    """``namespace/name`` of a namespaced object, ``name`` of a cluster-scoped one."""
    namespace, name = _meta(obj, "namespace", "namespace"), _meta(obj, "name", "name")
    return f"{namespace}/{name}" if namespace else str(name)


def unchanged(obj: Any) -> Any:
    """The default transform: objects are stored as received."""
    return obj


class Informer:
    """List + watch of one collection (``list_call`` is e.g. ``CoreV1Api.list_node``).

    ``on_error`` hears of every failed list or watch (on the informer's thread) as the ``PeerError`` it was
    recorded as, so that a caller can log and count failures without polling ``last_error``. ``transform`` makes
    what is stored of each object listed or watched (see the module docstring)."""

    def __init__(
        self,
        list_call: Callable[..., Any],
        peer: str,
        watch_timeout_s: int = 300,
        resync_s: float | None = None,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        retry_max_s: float | None = None,
        on_error: Callable[[PeerError], None] | None = None,
        transform: Callable[[Any], Any] = unchanged,
    ) -> None:
        if watch_timeout_s <= 0 or retry_s <= 0 or (resync_s is not None and resync_s <= 0):
            raise ValueError("watch_timeout_s, retry_s and resync_s must be positive")
        if retry_max_s is not None and retry_max_s < retry_s:
            raise ValueError("retry_max_s must be at least retry_s")
        self._list_call = list_call
        self.peer = peer
        self._watch_timeout_s = watch_timeout_s
        self._resync_s = resync_s
        self._retry_s = retry_s
        self._retry_max_s = retry_s if retry_max_s is None else retry_max_s
        self._on_error = on_error
        self._transform = transform
        self._clock = clock
        self._lock = threading.Lock()
        self._objects: dict[str, Any] = {}
        self._listed_at = 0.0
        self._watch: watch.Watch | None = None
        self.resource_version = ""
        self.lists = 0
        self.watches = 0
        self.last_error: PeerError | None = None
        self.synced = threading.Event()

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current objects by ``object_key``."""
        with self._lock:
            return dict(self._objects)

    def relist(self) -> None:
        """Replace the copy with a fresh list and remember its ``resourceVersion`` (read after the items, which
        may arrive as an iterator)."""
        listing = self._list_call()
        items = (listing.get("items") or []) if isinstance(listing, Mapping) else listing.items
        transform = self._transform
        objects = {object_key(item): transform(item) for item in items}
        with self._lock:
            self._objects = objects
            self.resource_version = str(_meta(listing, "resourceVersion", "resource_version"))
        self._listed_at = self._clock()
        self.lists += 1
        self.synced.set()

    def watch_once(self) -> None:
        """One watch from the current ``resourceVersion`` until the server ends it; applies every event.

        Raises ``ApiException`` with status 410 when the version is too old (the caller lists again).
        """
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        self._watch = stream
        self.watches += 1
        try:
            events = stream.stream(  # type: ignore[no-untyped-call]
                self._list_call, resource_version=self.resource_version, timeout_seconds=self._watch_timeout_s
            )
            for event in events:
                self._apply(event["type"], event["object"])
        finally:
            self._watch = None

    def _apply(self, kind: str, obj: Any) -> None:
        key = object_key(obj)
        version = str(_meta(obj, "resourceVersion", "resource_version"))
        deleted = kind == "DELETED"
        stored = None if deleted else self._transform(obj)
        with self._lock:
            if deleted:
                self._objects.pop(key, None)
            else:
                self._objects[key] = stored
            self.resource_version = version

    def run(self, stop: threading.Event) -> None:
        """List, then watch until ``stop`` is set: resume after timeouts, list again after 410 Gone or when
        the resync period has passed, and retry failures after ``retry_s``, doubling up to ``retry_max_s``
        (recorded in ``last_error`` until a list succeeds again)."""
        needs_list = True
        delay = self._retry_s
        while not stop.is_set():
            try:
                if needs_list or (
                    self._resync_s is not None and self._clock() - self._listed_at >= self._resync_s
                ):
                    self.relist()
                    needs_list, delay, self.last_error = False, self._retry_s, None
                self.watch_once()
            except ApiException as exc:
                needs_list = True
                if exc.status != _GONE:
                    delay = self._failed(exc, stop, delay)
            except Exception as exc:  # connection refused, reset, timeouts: the client raises urllib3 errors
                if stop.is_set():
                    break  # stop_watching closed the watch's connection
                needs_list = True
                delay = self._failed(exc, stop, delay)

    def _failed(self, exc: Exception, stop: threading.Event, delay: float) -> float:
        """Record ``exc``, tell ``on_error``, wait ``delay``; the next delay."""
        self.last_error = peer_error(self.peer, exc)
        if self._on_error is not None:
            self._on_error(self.last_error)
        stop.wait(delay)
        return min(delay * 2, self._retry_max_s)

    def stop_watching(self) -> None:
        """Ask the open watch to end after its next event (``run`` checks its ``stop`` between watches)."""
        stream = self._watch
        if stream is not None:
            stream.stop()  # type: ignore[no-untyped-call]


__all__ = ["Informer", "object_key", "unchanged"]
