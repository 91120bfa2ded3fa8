"""A stand-in Kubernetes API server for the adapters' tests: nodes and pods, speaking the real wire protocol.

What it models, as kube-apiserver does it:

- ``GET /api/v1/nodes`` and ``/api/v1/pods`` list with the collection's ``metadata.resourceVersion``;
  ``GET /api/v1/nodes/{name}``; unknown objects are 404 with a ``Status`` (reason ``NotFound``);
- ``?watch=true|1&resourceVersion=N&timeoutSeconds=T``: a chunked ``application/json`` stream of
  newline-separated events ``{"type": "ADDED|MODIFIED|DELETED", "object": {...}}`` for every change after
  version N, then live changes, until T seconds have passed; without a version, synthetic ``ADDED`` events for
  the current objects come first. A version older than what the server still holds (after ``restart``, which
  compacts the history and drops every open watch) is answered with one ``ERROR`` event whose object is a
  ``Status`` with code 410 and reason ``Expired``, as the real server does for a watch;
- ``PATCH /api/v1/nodes/{name}/status`` with ``application/json-patch+json`` (RFC 6902: add, remove, replace,
  test; a malformed patch is 400, one that does not apply is 422), ``application/merge-patch+json`` (RFC 7386)
  or ``application/strategic-merge-patch+json`` (for maps, which is all a node's capacity is: a patch with a
  list in it is refused, since list merge keys are not modelled); any other content type is 415. Only
  ``status`` changes stick (the status subresource ignores the rest); capacity values must be quantities,
  extended resources (``domain/name``) whole numbers, and they are stored in canonical form (``8000`` ->
  ``8k``, ``32768Mi`` -> ``32Gi``); every accepted write bumps the resourceVersion and emits ``MODIFIED``.

- ``fieldSelector`` on a list (not on a watch): comma-separated ``field=value``, ``field==value`` or
  ``field!=value`` terms, all of which must hold; nodes know ``metadata.name``, pods ``metadata.name``,
  ``metadata.namespace``, ``spec.nodeName`` and ``status.phase``; another field is 400 ``field label not
  supported``;
- ``POST /api/v1/namespaces/{ns}/pods/{name}/eviction`` (``policy/v1`` Eviction): a JSON body (no
  ``Content-Type`` means JSON, the server's first supported type; another type is 415)
  of kind ``Eviction`` in ``policy/v1`` or ``policy/v1beta1`` whose ``metadata.name`` is the URL's and whose
  ``metadata.namespace``, when given, is the URL's (400 otherwise); a missing pod is 404; a pod in
  ``disruption_blocked`` (its PodDisruptionBudget allows no disruption now) is 429 ``TooManyRequests`` with a
  ``DisruptionBudget`` cause; otherwise the pod is deleted (``DELETED``; grace periods are not modelled) and the
  answer is 201 with a ``Status`` of ``Success``, as the eviction REST storage returns.

Query parameters outside this model (``limit``, ``labelSelector``, ...) get a 400 naming them, so that a test
never passes against behaviour the stand-in does not have. Server-side apply is not modelled.

Faults on command (``inject``): answer a status (a ``Status`` body: 500 ``InternalError``, 503
``ServiceUnavailable`` ...), or hang for some seconds and then serve the request as usual (so a write the client
gave up on still lands), for matching requests. Refusing connections is the test's to do, by stopping the server.

The other APIs a broker talks to are served by the same app, each in its own module, sharing the server's
resourceVersion counter (etcd's revision) and lock: ``leases`` (``coordination.k8s.io/v1``),
``custom_resources`` (a CRD's objects and their ``status`` subresource, built from the CRD manifest; listed and
watched like nodes, through the same history, so ``restart`` compacts them too) and ``metrics_api``
(``metrics.k8s.io/v1beta1``, as metrics-server serves it through the aggregator).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .custom_resources import CustomResources
from .leases import Leases
from .metrics_api import MetricsApi
from .wire import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    ApiError,
    answer,
    apply_json_patch,
    apply_merge_patch,
    canonical_quantity,
    content_type,
    error,
    json_body,
    refuse_unknown_params,
    status,
)

_LIST_PARAMS = frozenset({"watch", "resourceVersion", "timeoutSeconds", "fieldSelector"})
_EVICTION_PARAMS = frozenset({"dryRun", "fieldManager", "fieldValidation", "pretty"})
_SELECTABLE = {
    "nodes": ("metadata.name",),
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"),
}
_REASONS = {500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class Fault:
    """Misbehave on requests whose method matches (``""``: any) and whose path starts with ``path``, ``times``
    times: ``status`` answers ``status`` with a ``Status`` body; ``hang`` waits ``seconds``, then serves."""

    kind: str
    path: str = "/"
    method: str = ""
    status: int = 503
    seconds: float = 0.0
    times: int = 1


class _Faults:
    """ASGI middleware applying the server's injected faults before routing."""

    def __init__(self, app: ASGIApp, server: StandInApiServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.server.take_fault(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if fault is not None and fault.kind == "status":
            reason = _REASONS.get(fault.status, "InternalError")
            await error(ApiError(fault.status, reason, "injected failure"))(scope, receive, send)
            return
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class _Event:
    version: int
    collection: str
    kind: str
    obj: dict[str, Any]


class StandInApiServer:
    """The objects, their history and the HTTP app serving them. Test code changes objects through
    ``put``/``delete``/``restart`` from its own thread; requests are served on uvicorn's."""

    def __init__(self, crd: dict[str, Any] | None = None) -> None:
        """``crd``: a CustomResourceDefinition manifest whose objects the server also serves."""
        self._lock = threading.RLock()  # ``restart`` changes objects through ``put``/``delete`` while held
        self._version = 100
        self._oldest = 100  # the history holds every event after this version
        self._objects: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "pods": {}}
        self._history: list[_Event] = []
        self._generation = 0
        self.patches: list[tuple[str, str, Any]] = []
        self.faults: list[Fault] = []
        self.disruption_blocked: set[str] = set()
        """``namespace/name`` of pods whose PodDisruptionBudget allows no eviction now."""
        self.evictions: list[str] = []
        """``namespace/name`` of every pod evicted, in order."""
        self.leases = Leases(self._lock, self.next_version)
        self.metrics = MetricsApi()
        self.custom = CustomResources(crd, self._lock, self) if crd is not None else None
        routes = [
            Route("/api/v1/nodes", self._collection("nodes"), methods=["GET"]),
            Route("/api/v1/pods", self._collection("pods"), methods=["GET"]),
            Route("/api/v1/nodes/{name}", self._get_node, methods=["GET"]),
            Route("/api/v1/nodes/{name}/status", self._patch_node_status, methods=["PATCH"]),
            Route("/api/v1/namespaces/{namespace}/pods/{name}/eviction", self._evict, methods=["POST"]),
            *self.leases.routes(),
            *self.metrics.routes(),
            *(self.custom.routes() if self.custom is not None else []),
        ]
        self.app = Starlette(routes=routes, middleware=[Middleware(_Faults, server=self)])

    def next_version(self) -> int:
        """The next resourceVersion: one counter for every kind of object, as etcd's revision is."""
        with self._lock:
            self._version += 1
            return self._version

    def current_version(self) -> int:
        """The newest resourceVersion (a list's ``metadata.resourceVersion``)."""
        with self._lock:
            return self._version

    def append_event(self, collection: str, kind: str, obj: dict[str, Any]) -> None:
        """Record a change of an object another module serves (``custom_resources``) for its watchers; ``obj``
        carries the resourceVersion the change got from ``next_version``."""
        with self._lock:
            version = int(obj["metadata"]["resourceVersion"])
            self._history.append(_Event(version, collection, kind, copy.deepcopy(obj)))

    def stream_events(self, collection: str, kind: str, api_version: str, since: str, timeout_s: int,
                      current: Callable[[], Iterable[dict[str, Any]]]) -> Response:
        """A watch of ``collection`` served by another module (see ``_watch``); ``current`` gives its objects
        for a watch without a resourceVersion."""
        return self._watch(collection, kind, since, timeout_s, api_version, current)

    # --- test-side changes ------------------------------------------------------------------------------

    def put(self, collection: str, obj: dict[str, Any]) -> None:
        """Create or replace an object (``ADDED`` or ``MODIFIED``)."""
        with self._lock:
            key = self._key(obj)
            kind = "MODIFIED" if key in self._objects[collection] else "ADDED"
            self._record(collection, kind, key, copy.deepcopy(obj))

    def delete(self, collection: str, key: str) -> None:
        with self._lock:
            obj = self._objects[collection].pop(key)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._history.append(_Event(self._version, collection, "DELETED", obj))

    def restart(self, while_down: Callable[[StandInApiServer], None] = lambda server: None) -> None:
        """Simulate an API server restart after etcd compaction: open watches end, ``while_down`` changes
        objects unseen by any watch, and every version before now is gone (watching from it answers 410)."""
        with self._lock:
            self._generation += 1
            while_down(self)
            self._history.clear()
            self._oldest = self._version

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.method in ("", method) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def objects(self, collection: str) -> dict[str, dict[str, Any]]:
        """A copy of every object of ``collection`` by key (``namespace/name`` or ``name``)."""
        with self._lock:
            return copy.deepcopy(self._objects[collection])

    def node(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._objects["nodes"][name])

    @staticmethod
    def _key(obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])

    def _record(self, collection: str, kind: str, key: str, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self._objects[collection][key] = obj
        self._history.append(_Event(self._version, collection, kind, copy.deepcopy(obj)))

    # --- HTTP -------------------------------------------------------------------------------------------

    def _collection(self, collection: str) -> Callable[[Request], Any]:
        kind = {"nodes": "Node", "pods": "Pod"}[collection]

        async def endpoint(request: Request) -> Response:
            params = request.query_params
            try:
                refuse_unknown_params(request, _LIST_PARAMS)
            except ApiError as exc:
                return error(exc)
            selector = params.get("fieldSelector", "")
            if params.get("watch") in {"true", "1"}:
                if selector:
                    return error(ApiError(400, "BadRequest", "not modelled by the stand-in: watch with fieldSelector"))
                return self._watch(
                    collection,
                    kind,
                    params.get("resourceVersion", ""),
                    int(params.get("timeoutSeconds", "1800")),
                )
            try:
                matches = _field_selector(selector, _SELECTABLE[collection])
            except ApiError as exc:
                return error(exc)
            with self._lock:
                items = [copy.deepcopy(o) for o in self._objects[collection].values() if matches(o)]
                version = self._version
            return answer(
                {
                    "kind": f"{kind}List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(version)},
                    "items": items,
                }
            )

        return endpoint

    def _watch(self, collection: str, kind: str, since: str, timeout_s: int, api_version: str = "v1",
               current: Callable[[], Iterable[dict[str, Any]]] | None = None) -> Response:
        def line(event_type: str, obj: dict[str, Any]) -> bytes:
            return (
                orjson.dumps({"type": event_type, "object": {"kind": kind, "apiVersion": api_version, **obj}})
                + b"\n"
            )

        async def events() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout_s
            with self._lock:
                generation = self._generation
                if not since or since == "0":
                    start = self._version
                    objects = current() if current is not None else self._objects[collection].values()
                    initial = [copy.deepcopy(o) for o in objects]
                elif int(since) < self._oldest:
                    expired = status(410, "Expired", f"too old resource version: {since} ({self._oldest})")
                    initial, start = [], -1
                else:
                    start, initial = int(since), []
            if start < 0:
                yield orjson.dumps({"type": "ERROR", "object": expired}) + b"\n"
                return
            for obj in initial:
                yield line("ADDED", obj)
            sent = start
            while time.monotonic() < deadline:
                with self._lock:
                    if self._generation != generation:
                        return
                    pending = [e for e in self._history if e.version > sent and e.collection == collection]
                for event in pending:
                    yield line(event.kind, event.obj)
                    sent = event.version
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="application/json")

    async def _get_node(self, request: Request) -> Response:
        name = request.path_params["name"]
        with self._lock:
            node = self._objects["nodes"].get(name)
        if node is None:
            return error(ApiError(404, "NotFound", f'nodes "{name}" not found'))
        return answer({"kind": "Node", "apiVersion": "v1", **node})

    async def _patch_node_status(self, request: Request) -> Response:
        name = request.path_params["name"]
        kind = content_type(request)
        body = await request.body()
        try:
            if kind not in {JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH}:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}",
                )
            try:
                patch = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ApiError(400, "BadRequest", "unable to decode patch: invalid JSON") from None
            with self._lock:
                node = self._objects["nodes"].get(name)
                if node is None:
                    raise ApiError(404, "NotFound", f'nodes "{name}" not found')
                patched = (
                    apply_json_patch(node, patch)
                    if kind == JSON_PATCH
                    else apply_merge_patch(node, patch, kind == STRATEGIC_MERGE_PATCH)
                )
                updated = {**copy.deepcopy(node), "status": self._checked_status(patched.get("status"))}
                self.patches.append((name, kind, patch))
                self._record("nodes", "MODIFIED", name, updated)
                return answer({"kind": "Node", "apiVersion": "v1", **copy.deepcopy(updated)})
        except ApiError as exc:
            return error(exc)

    async def _evict(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        try:
            refuse_unknown_params(request, _EVICTION_PARAMS)
            if content_type(request) not in {"", "application/json"}:  # none means the first supported: JSON
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json")
            body = await json_body(request)
            if not isinstance(body, dict) or body.get("kind") != "Eviction" or body.get("apiVersion") not in {
                "policy/v1",
                "policy/v1beta1",
            }:
                raise ApiError(400, "BadRequest", "the body must be an Eviction of policy/v1 or policy/v1beta1")
            meta = body.get("metadata") or {}
            if meta.get("name") != name:
                raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            key = f"{namespace}/{name}"
            with self._lock:
                if key not in self._objects["pods"]:
                    raise ApiError(404, "NotFound", f'pods "{name}" not found')
                if key in self.disruption_blocked:
                    refusal = status(
                        429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."
                    )
                    refusal["details"] = {
                        "causes": [
                            {"reason": "DisruptionBudget", "message": "The disruption budget needs 1 healthy pods"}
                        ]
                    }
                    return answer(refusal, 429)
                self.delete("pods", key)
                self.evictions.append(key)
            return answer({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
        except ApiError as exc:
            return error(exc)

    @staticmethod
    def _checked_status(node_status: Any) -> dict[str, Any]:
        if not isinstance(node_status, dict):
            raise ApiError(422, "Invalid", "status: must be an object")
        out = copy.deepcopy(node_status)
        for field in ("capacity", "allocatable"):
            resources = out.get(field) or {}
            if not isinstance(resources, dict):
                raise ApiError(422, "Invalid", f"status.{field}: must be a map of quantities")
            for resource, value in resources.items():
                if not isinstance(value, str):
                    raise ApiError(422, "Invalid", f"status.{field}[{resource}]: must be a quantity string")
                extended = "/" in resource and not resource.startswith("kubernetes.io/")
                resources[resource] = canonical_quantity(value, extended)
        return out


def _field_selector(selector: str, fields: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for ``selector`` (see the module docstring), or the 400 the server answers."""
    terms: list[tuple[str, bool, str]] = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        field, negated, value = _term(term)
        if field not in fields:
            raise ApiError(400, "BadRequest", f"field label not supported: {field}")
        terms.append((field, negated, value))

    def value_of(obj: dict[str, Any], field: str) -> str:
        found: Any = obj
        for part in field.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return "" if found is None else str(found)

    return lambda obj: all((value_of(obj, f) == v) != negated for f, negated, v in terms)


def _term(term: str) -> tuple[str, bool, str]:
    for operator, negated in (("!=", True), ("==", False), ("=", False)):
        field, found, value = term.partition(operator)
        if found:
            return field.strip(), negated, value.strip()
    raise ApiError(400, "BadRequest", f"invalid selector: {term!r}: no operator")
