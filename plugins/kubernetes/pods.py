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

Pods are kept as plain dicts with the API server's wire names (``spec.nodeName``), not as the client's models:
reading a pod into ``V1Pod`` costs about a millisecond and tens of kilobytes, which at 100,000 pods is minutes of
CPU and gigabytes. Of each pod only ``READ_FIELDS`` are kept (``kept``, the informer's transform): what the
broker's demand reader and the extender's ``read_pod`` read of it. A Spark pod as sent is mostly
``managedFields``, env, volumes, conditions and container statuses: 100,000 pods kept whole were 1.7 GB, and
listing them peaked at 2.9 GB, over the broker pod's 2 GiB memory limit; kept, 0.35 GB, peaking at 0.5 GB
(``bench/pod_demand_bench.py``, docs/benchmarks.md). The list is decoded as it arrives (``decode_list``), one pod
at a time, so that neither the whole response (hundreds of megabytes) nor the whole decoded list is ever held
(it is also faster: the cyclic garbage collector no longer walks a growing heap of whole pods while they are
built); watch events arrive as dicts, one at a time, because the list function tells the client's ``Watch`` that
it returns ``object`` (the same path as custom objects).

Every request is bounded (a watch's read by its ``timeoutSeconds`` plus ``request_timeout_s``), so a half-open
connection cannot hang the thread for ever. RBAC: ``list`` and ``watch`` on ``pods``, cluster-wide.
"""

from __future__ import annotations

import codecs
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kubernetes import client

from broker.errors import PeerError
from plugins.kubernetes.informer import Informer

UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed"
"""The field selector of the pods followed: every pod that may still hold or want resources."""

Fields = Mapping[str, "Fields | None"]
"""Fields to keep of an object: a value of ``None`` keeps that field whole, a mapping keeps those fields of it (of
each element, for a list)."""

_RESOURCES: Fields = {"resources": {"requests": None, "limits": None}}
READ_FIELDS: Fields = {
    "metadata": {"name": None, "namespace": None, "uid": None, "resourceVersion": None, "creationTimestamp": None,
                 "deletionTimestamp": None, "labels": None, "annotations": None},
    "spec": {"nodeName": None, "priority": None, "overhead": None, "containers": _RESOURCES,
             "initContainers": _RESOURCES},
    "status": {"phase": None, "startTime": None},
}
"""What the broker reads of a pod: the informer's key and version; the demand reader's binding, phase and deletion
(``kubernetes_demand.pod_state``); the extender's ``read_pod`` (team, class, role and disk labels or annotations,
the containers' and init containers' requests and limits, the overhead, priority and start time).
``tests/service/test_kubernetes_demand.py`` fails when either reads a field not kept here."""

_CHUNK = 1 << 20
"""Bytes of a list read at a time."""
_MAX_VALUE = 32 << 20
"""Characters a single value of a list may take: etcd refuses objects over 1.5 MiB by default, so past this the
response is not JSON the API server sent (and reading on would hold all the rest of it)."""
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def kept(obj: Any, fields: Fields | None = READ_FIELDS) -> Any:
    """``obj`` with only ``fields`` (see ``Fields``). A field of an unexpected type is kept as it is, so that the
    reader still names it as wrong."""
    if fields is None:
        return obj
    if isinstance(obj, dict):
        return {key: kept(obj[key], inner) for key, inner in fields.items() if key in obj}
    if isinstance(obj, list):
        return [kept(item, fields) for item in obj]
    return obj


def decode_list(chunks: Iterable[bytes]) -> dict[str, Any]:
    """A ``*List`` response (JSON in UTF-8, in ``chunks`` as they arrive) decoded one item at a time: ``items``
    is an iterator, which decodes each item as it is taken, and ``metadata`` is filled in as it is met (before
    the items, as the API server sends it, or after them: read it once the items are). Malformed text is a
    ``ValueError`` when it is met."""
    metadata: dict[str, Any] = {}
    return {"metadata": metadata, "items": _items(_Arriving(chunks), metadata)}


def _items(text: _Arriving, metadata: dict[str, Any]) -> Iterator[Any]:
    text.take("{")
    if text.peek() == "}":
        text.take("}")
    else:
        while True:
            if text.peek() != '"':
                raise ValueError(f"list response: expected a member name at character {text.position}")
            key = text.value()
            text.take(":")
            if key == "items" and text.peek() == "[":
                text.take("[")
                if text.peek() == "]":
                    text.take("]")
                else:
                    yield text.value()
                    while text.take(",", "]") == ",":
                        yield text.value()
            else:
                value = text.value()
                if key == "metadata" and isinstance(value, dict):
                    metadata.update(value)
            if text.take(",", "}") == "}":
                break
    if text.peek():
        raise ValueError(f"list response: extra data after the list at character {text.position}")


class _Arriving:
    """JSON text arriving in chunks, read a token or a whole value at a time (each value decoded once all of it
    has arrived)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._at = 0
        self._dropped = 0
        self._ended = False

    @property
    def position(self) -> int:
        """Characters read so far (for error messages)."""
        return self._dropped + self._at

    def peek(self) -> str:
        """The next character other than whitespace, ``""`` at the end of the text."""
        while True:
            space = _SPACE.match(self._text, self._at)
            self._at = space.end() if space else self._at
            if self._at < len(self._text):
                return self._text[self._at]
            if self._ended:
                return ""
            self._more(_CHUNK)

    def take(self, *expected: str) -> str:
        """The next character, one of ``expected``."""
        char = self.peek()
        if char not in expected:
            found = repr(char) if char else "the end"
            raise ValueError(f"list response: expected {' or '.join(expected)} at character {self.position}, "
                             f"found {found}")
        self._at += 1
        return char

    def value(self) -> Any:
        """The next JSON value, read further until it has ended: a value counts once something follows it (a
        number cut by a chunk's end would otherwise decode as a smaller one)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._at)
                if end < len(self._text) or self._ended:
                    self._at = end
                    return value
            except json.JSONDecodeError as exc:
                if self._ended:
                    raise ValueError(f"list response: {exc.msg} at character {self._dropped + exc.pos}") from None
                if len(self._text) - self._at > _MAX_VALUE:
                    raise ValueError(f"list response: no value ends within {_MAX_VALUE} characters of character "
                                     f"{self.position}") from None
            self._more(max(_CHUNK, len(self._text) - self._at))

    def _more(self, size: int) -> None:
        """Read at least ``size`` more bytes (or up to the end), dropping the text already read."""
        parts = [self._text[self._at:]]
        read = 0
        while read < size and not self._ended:
            chunk = next(self._chunks, None)
            if chunk is None:
                parts.append(self._utf8.decode(b"", final=True))
                self._ended = True
            else:
                parts.append(self._utf8.decode(chunk))
                read += len(chunk)
        self._dropped += self._at
        self._text, self._at = "".join(parts), 0


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
                                  retry_max_s=retry_max_s, on_error=self._failed, transform=kept)
        self._failed_once = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _list(self, **kwargs: Any) -> Any:
        """List the unfinished pods as a ``PodList`` decoded as it arrives (``decode_list``), or start a watch of
        them (``watch=True``, the raw response the client's ``Watch`` reads events from). The line below tells
        ``Watch`` to hand events over as plain dicts instead of ``V1Pod``.

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
        return decode_list(_released(response))

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


def _released(response: Any) -> Iterator[bytes]:
    """The body of ``response`` (urllib3's) as it arrives; the connection goes back to the pool once it is read,
    or when reading stops."""
    try:
        yield from response.stream(_CHUNK)
    finally:
        response.release_conn()


__all__ = ["READ_FIELDS", "UNFINISHED", "ClusterPods", "Fields", "decode_list", "kept"]
