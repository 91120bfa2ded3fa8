"""The unfinished pods of one cluster, followed by list + watch on a thread of their own, as plain dicts.

``ClusterPods`` keeps a local copy with ``Informer``'s protocol: ``GET /api/v1/pods`` (every namespace) with
``fieldSelector=status.phase!=Succeeded,status.phase!=Failed``, then a watch from the list's resourceVersion,
resumed when the server ends it, listed again after 410 Gone; a failure (the API server down, refusing, RBAC
missing) is retried with a doubling delay and kept in ``error`` until a list succeeds again, while the last copy
stays readable. The field selector keeps finished pods (up to the controller manager's
``--terminated-pod-gc-threshold``, 12,500 by default) out of memory: a watch with a field selector sends a pod
that stops matching as ``DELETED``, as the API server's watch cache does. Lists ask for ``resourceVersion=0``
(served from the watch cache, as informers do), so that a broker restarting does not read the whole collection
from etcd.

Pods are kept as the API server sends them (wire names, ``spec.nodeName``), not as the client's models: reading
a pod into ``V1Pod`` costs about a millisecond and tens of kilobytes, which at 100,000 pods is minutes of CPU
and gigabytes. The list is decoded with ``orjson``; watch events arrive as dicts because the list function tells
the client's ``Watch`` that it returns ``object`` (the same path as custom objects).

Every request is bounded (a watch's read by its ``timeoutSeconds`` plus ``request_timeout_s``), so a half-open
connection cannot hang the thread for ever. RBAC: ``list`` and ``watch`` on ``pods``, cluster-wide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from kubernetes import client

from broker.errors import PeerError
from plugins.kubernetes.informer import Informer

UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed"
"""The field selector of the pods followed: every pod that may still hold or want resources."""


class ClusterPods:
    """The unfinished pods of one cluster (see the module docstring). ``start`` follows them on a daemon thread
    until ``close``, which also closes ``api``."""

    def __init__(self, api: client.ApiClient, peer: str, *, request_timeout_s: float = 10.0,
                 watch_timeout_s: int = 300, retry_s: float = 1.0, retry_max_s: float = 30.0,
                 on_error: Callable[[PeerError], None] | None = None) -> None:
        if request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self.peer = peer
        self._api = api
        self._core = client.CoreV1Api(api)
        self._request_timeout_s = request_timeout_s
        self._watch_timeout_s = watch_timeout_s
        self._on_error = on_error
        self._informer = Informer(self._list, peer, watch_timeout_s=watch_timeout_s, retry_s=retry_s,
                                  retry_max_s=retry_max_s, on_error=self._failed)
        self._failed_once = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _list(self, **kwargs: Any) -> Any:
        """List the unfinished pods as a decoded ``PodList``, or start a watch of them (``watch=True``, the raw
        response the client's ``Watch`` reads events from). The line below tells ``Watch`` to hand events over as
        plain dicts instead of ``V1Pod``.

        :rtype: object
        """
        watching = bool(kwargs.get("watch"))
        read_s = self._request_timeout_s + (self._watch_timeout_s if watching else 0)
        timeouts = (self._request_timeout_s, read_s)
        if watching:
            return self._core.list_pod_for_all_namespaces(field_selector=UNFINISHED, _request_timeout=timeouts,
                                                          **kwargs)
        response: Any = self._core.list_pod_for_all_namespaces(  # unloaded: the urllib3 response, not a V1PodList
            field_selector=UNFINISHED, resource_version="0", _preload_content=False, _request_timeout=timeouts)
        try:
            return orjson.loads(response.data)
        finally:
            response.release_conn()

    def start(self) -> None:
        """Follow the pods on a daemon thread until ``close``; a second call does nothing."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._informer.run, args=(self._stop,), name=f"pods {self.peer}",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop following (the open watch is closed at once; a list in flight ends at its request timeout), then
        close the API client."""
        self._stop.set()
        self._informer.stop_watching()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._api.close()  # type: ignore[no-untyped-call]

    def wait_first_list(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the first list to succeed or fail (blocking: call it off the event loop);
        true once listed."""
        deadline = time.monotonic() + timeout_s
        while not self._failed_once.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._informer.synced.wait(min(left, 0.05)):
                return True
        return self.listed

    @property
    def listed(self) -> bool:
        """True once the pods were listed (before that, the copy says nothing)."""
        return self._informer.synced.is_set()

    @property
    def error(self) -> PeerError | None:
        """The failure since the last successful list (``None`` while the copy follows the API server)."""
        return self._informer.last_error

    def _failed(self, error: PeerError) -> None:
        self._failed_once.set()
        if self._on_error is not None:
            self._on_error(error)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every unfinished pod as last listed or watched, by ``namespace/name``."""
        return self._informer.snapshot()


__all__ = ["UNFINISHED", "ClusterPods"]
