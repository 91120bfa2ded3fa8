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

Query parameters outside this model (``limit``, ``labelSelector``, ...) get a 400 naming them, so that a test
never passes against behaviour the stand-in does not have. Server-side apply is not modelled.
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
_LIST_PARAMS = frozenset({"watch", "resourceVersion", "timeoutSeconds"})
_QUANTITY = re.compile(r"^([0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DECIMAL = {"": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}


class ApiError(Exception):
    """An answer with a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def canonical_quantity(value: str, extended: bool) -> str:
    """``value`` as the API server stores it, or ``ApiError`` 422 if it is not a quantity (whole for an
    extended resource). Only integer mantissas are modelled."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ApiError(422, "Invalid", f"quantities must match the regular expression: {value!r}")
    number, suffix = int(match.group(1)), match.group(2) or ""
    if suffix == "m":
        if number % 1000:
            if extended:
                raise ApiError(422, "Invalid", f"{value}: must be an integer")
            return value
        number, suffix = number // 1000, ""
    if suffix in _BINARY:
        amount = number * 1024 ** _BINARY[suffix]
        if amount == 0:
            return "0"
        binary = [p for p in range(1, len(_BINARY) + 1) if amount % 1024**p == 0]
        return f"{amount // 1024 ** binary[-1]}{list(_BINARY)[binary[-1] - 1]}" if binary else str(amount)
    amount = number * 1000 ** _DECIMAL[suffix]
    if amount == 0:
        return "0"
    power = max(p for p in range(len(_DECIMAL)) if amount % 1000**p == 0)
    return f"{amount // 1000**power}{list(_DECIMAL)[power]}"


def _tokens(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ApiError(400, "BadRequest", f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    target = doc
    for token in tokens[:-1]:
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise ApiError(422, "Invalid", f"jsonpatch: doc is missing path: {path}")
    return target, tokens[-1]


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, test) on a copy of ``doc``."""
    if not isinstance(ops, list) or not all(
        isinstance(op, dict) and isinstance(op.get("path"), str) for op in ops
    ):
        raise ApiError(400, "BadRequest", "unable to decode patch: expected a list of operations with a path")
    out = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op["path"]
        if kind not in {"add", "remove", "replace", "test"}:
            raise ApiError(400, "BadRequest", f"unsupported or unknown JSON patch operation {kind!r}")
        if kind in {"add", "replace", "test"} and "value" not in op:
            raise ApiError(400, "BadRequest", f"{kind} operation needs a value")
        parent, key = _parent(out, path)
        if not isinstance(parent, dict):
            raise ApiError(422, "Invalid", f"jsonpatch: only object members are modelled: {path}")
        present = key in parent
        if kind == "add":
            parent[key] = op["value"]
        elif not present:
            raise ApiError(
                422, "Invalid", f"jsonpatch {kind} operation does not apply: doc is missing key: {path}"
            )
        elif kind == "remove":
            del parent[key]
        elif kind == "replace":
            parent[key] = op["value"]
        elif parent[key] != op["value"]:
            raise ApiError(422, "Invalid", f"testing value {path} failed")
    return out


def apply_merge_patch(doc: Any, patch: Any, strategic: bool) -> Any:
    """RFC 7386 merge; a strategic merge patch is the same for maps, and lists are not modelled."""
    if not isinstance(patch, dict):
        return patch
    if strategic and any(isinstance(v, list) for v in patch.values()):
        raise ApiError(400, "BadRequest", "strategic merge of lists is not modelled by the stand-in")
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value, strategic)
    return out


@dataclass(frozen=True)
class _Event:
    version: int
    collection: str
    kind: str
    obj: dict[str, Any]


class StandInApiServer:
    """The objects, their history and the HTTP app serving them. Test code changes objects through
    ``put``/``delete``/``restart`` from its own thread; requests are served on uvicorn's."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # ``restart`` changes objects through ``put``/``delete`` while held
        self._version = 100
        self._oldest = 100  # the history holds every event after this version
        self._objects: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "pods": {}}
        self._history: list[_Event] = []
        self._generation = 0
        self.patches: list[tuple[str, str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/api/v1/nodes", self._collection("nodes"), methods=["GET"]),
                Route("/api/v1/pods", self._collection("pods"), methods=["GET"]),
                Route("/api/v1/nodes/{name}", self._get_node, methods=["GET"]),
                Route("/api/v1/nodes/{name}/status", self._patch_node_status, methods=["PATCH"]),
            ]
        )

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

    @staticmethod
    def _answer(body: Any, code: int = 200) -> Response:
        return Response(orjson.dumps(body), code, media_type="application/json")

    def _error(self, exc: ApiError) -> Response:
        return self._answer(status(exc.code, exc.reason, exc.message), exc.code)

    def _collection(self, collection: str) -> Callable[[Request], Any]:
        kind = {"nodes": "Node", "pods": "Pod"}[collection]

        async def endpoint(request: Request) -> Response:
            params = request.query_params
            unknown = set(params) - _LIST_PARAMS
            if unknown:
                return self._error(
                    ApiError(400, "BadRequest", f"not modelled by the stand-in: {sorted(unknown)}")
                )
            if params.get("watch") in {"true", "1"}:
                return self._watch(
                    collection,
                    kind,
                    params.get("resourceVersion", ""),
                    int(params.get("timeoutSeconds", "1800")),
                )
            with self._lock:
                items = [copy.deepcopy(o) for o in self._objects[collection].values()]
                version = self._version
            return self._answer(
                {
                    "kind": f"{kind}List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(version)},
                    "items": items,
                }
            )

        return endpoint

    def _watch(self, collection: str, kind: str, since: str, timeout_s: int) -> Response:
        def line(event_type: str, obj: dict[str, Any]) -> bytes:
            return (
                orjson.dumps({"type": event_type, "object": {"kind": kind, "apiVersion": "v1", **obj}})
                + b"\n"
            )

        async def events() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout_s
            with self._lock:
                generation = self._generation
                if not since or since == "0":
                    start = self._version
                    initial = [copy.deepcopy(o) for o in self._objects[collection].values()]
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
            return self._error(ApiError(404, "NotFound", f'nodes "{name}" not found'))
        return self._answer({"kind": "Node", "apiVersion": "v1", **node})

    async def _patch_node_status(self, request: Request) -> Response:
        name = request.path_params["name"]
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        body = await request.body()
        try:
            if content_type not in {JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH}:
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
                    if content_type == JSON_PATCH
                    else apply_merge_patch(node, patch, content_type == STRATEGIC_MERGE_PATCH)
                )
                updated = {**copy.deepcopy(node), "status": self._checked_status(patched.get("status"))}
                self.patches.append((name, content_type, patch))
                self._record("nodes", "MODIFIED", name, updated)
                return self._answer({"kind": "Node", "apiVersion": "v1", **copy.deepcopy(updated)})
        except ApiError as exc:
            return self._error(exc)

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
