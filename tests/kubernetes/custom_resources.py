"""The objects of one CustomResourceDefinition, served from its manifest as kube-apiserver serves them.

The group, version, plural, scope, schema and subresources all come from the CRD given (the tests pass the
project's own ``deploy/crds/...``), so a CRD that lacks what the adapter relies on makes the tests fail:

- ``GET /apis/{group}/{version}/{plural}/{name}`` (or ``.../namespaces/{ns}/{plural}/{name}`` when the CRD is
  ``Namespaced``): the object, 404 ``NotFound`` when absent;
- ``GET /apis/{group}/{version}/{plural}``: every object (of every namespace) as a ``{listKind}`` with the
  collection's ``metadata.resourceVersion``; with ``watch=true|1`` (and ``resourceVersion``, ``timeoutSeconds``)
  the API server's watch stream of ``ADDED`` / ``MODIFIED`` / ``DELETED`` events, 410 ``Expired`` for a version
  compacted away (``kube_apiserver``: the objects share its resourceVersion counter and event history);
- ``PATCH .../{name}/status``: exists only when the version declares ``subresources: {status: {}}`` (404
  otherwise, as the real server has no such path); ``application/merge-patch+json`` or
  ``application/json-patch+json`` (custom resources do not support strategic merge: 415); only ``status``
  changes stick; a ``metadata.resourceVersion`` in the patch is a precondition (409 ``Conflict`` when the stored
  object has moved on); a patch that changes nothing stores nothing and keeps the resourceVersion; one that does
  emits ``MODIFIED`` and leaves ``metadata.generation`` alone.

Tests change objects as ``kubectl`` would through the main resource (``put``, ``delete``): a new object gets a
``uid`` and ``generation`` 1; a replaced one keeps its ``uid`` and, when the CRD has the status subresource, its
stored ``status`` (the subresource owns it), and its ``generation`` goes up by one only when the rest of it (the
spec) changed; a deleted one is announced with its last state at a new resourceVersion. The spec is pruned and
checked against the schema as the server does on create and update (a test writing what the server would refuse
gets a ``ValueError``).

The status is checked against the version's structural schema: fields the schema does not declare are pruned
(``fieldValidation`` absent, ``Warn`` with a ``Warning`` header, or ``Ignore``) or refused with 400 under
``fieldValidation=Strict``, unless ``x-kubernetes-preserve-unknown-fields`` keeps them; then the keywords
``type``, ``required``, ``enum``, ``maxItems``, ``maxProperties``, ``maxLength``, ``pattern``, ``minimum``,
``x-kubernetes-int-or-string`` and map-list key uniqueness are enforced (422 ``Invalid``). Other OpenAPI
keywords are not modelled.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .wire import (
    JSON_PATCH,
    MERGE_PATCH,
    ApiError,
    answer,
    apply_json_patch,
    apply_merge_patch,
    conflict,
    content_type,
    error,
    json_body,
    refuse_unknown_params,
)

_PATCH_PARAMS = frozenset({"fieldValidation", "fieldManager", "dryRun", "pretty", "force"})
_LIST_PARAMS = frozenset({"watch", "resourceVersion", "timeoutSeconds"})
_VALIDATION = {"", "Ignore", "Warn", "Strict"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    """``value`` without the fields ``schema`` does not declare; their paths are added to ``unknown``."""
    if schema.get("x-kubernetes-int-or-string"):
        return value
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        keep = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}"
            if key in properties:
                out[key] = prune(item, properties[key], where, unknown)
            elif isinstance(extra, dict):
                out[key] = prune(item, extra, where, unknown)
            elif keep:
                out[key] = item
            else:
                unknown.append(where)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    return value


def validate(value: Any, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    """Add to ``problems`` every way ``value`` breaks the keywords the module docstring lists."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _TYPES["integer"](value)):
            problems.append(f"{path}: Invalid value: {value!r}: must be an integer or a string")
        return
    kind = schema.get("type")
    if kind is not None and not _TYPES[kind](value):
        problems.append(f"{path}: Invalid value: {type(value).__name__}: {path} in body must be of type {kind}")
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(f'"{v}"' for v in schema["enum"])
        problems.append(f"{path}: Unsupported value: {value!r}: supported values: {supported}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name}: Required value")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            problems.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxProperties']} items")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                validate(item, sub, f"{path}.{key}", problems)
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema.get("x-kubernetes-list-map-keys", [])
            seen = [tuple(item.get(k) for k in keys) for item in value if isinstance(item, dict)]
            if len(seen) != len(set(seen)):
                problems.append(f"{path}: Duplicate value: map-list keys {keys} must be unique")
        for i, item in enumerate(value):
            if isinstance(schema.get("items"), dict):
                validate(item, schema["items"], f"{path}[{i}]", problems)
    elif isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: Too long: may not be longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            problems.append(f"{path}: Invalid value: {value!r}: {path} in body should match {schema['pattern']!r}")
    elif _TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: Invalid value: {value}: {path} in body should be >= {schema['minimum']}")


class History(Protocol):
    """What the API server shares with the objects it serves: etcd's revision counter and event history."""

    def next_version(self) -> int: ...

    def current_version(self) -> int: ...

    def append_event(self, collection: str, kind: str, obj: dict[str, Any]) -> None: ...

    def stream_events(self, collection: str, kind: str, api_version: str, since: str, timeout_s: int,
                      current: Callable[[], Iterable[dict[str, Any]]]) -> Response: ...


class CustomResources:
    """The objects of ``crd`` (its first served version), keyed by (namespace or "", name)."""

    def __init__(self, crd: dict[str, Any], lock: threading.RLock, history: History) -> None:
        spec = crd["spec"]
        version = next(v for v in spec["versions"] if v.get("served", True))
        self.group, self.version = spec["group"], version["name"]
        self.plural, self.kind = spec["names"]["plural"], spec["names"]["kind"]
        self.list_kind = spec["names"].get("listKind", f"{self.kind}List")
        self.namespaced = spec["scope"] == "Namespaced"
        self.has_status = "status" in (version.get("subresources") or {})
        self._schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
        self._lock = lock
        self._history = history
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.status_writes = 0

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def routes(self) -> list[Route]:
        scope = "/namespaces/{namespace}" if self.namespaced else ""
        item = f"/apis/{self.group}/{self.version}{scope}/{self.plural}/{{name}}"
        routes = [Route(f"/apis/{self.group}/{self.version}/{self.plural}", self._list, methods=["GET"]),
                  Route(item, self._get, methods=["GET"])]
        if self.has_status:
            routes.append(Route(item + "/status", self._patch_status, methods=["PATCH"]))
        return routes

    def put(self, obj: dict[str, Any]) -> None:
        """Create or replace an object from the test side (see the module docstring)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self._lock:
            stored = {"apiVersion": self.api_version, "kind": self.kind, **copy.deepcopy(obj)}
            self._check_spec(stored)
            before = self._objects.get(key)
            if before is None:
                stored["metadata"].update(uid=str(uuid.uuid4()), generation=1)
                event = "ADDED"
            else:
                if self.has_status:
                    stored.pop("status", None)
                    if "status" in before:
                        stored["status"] = copy.deepcopy(before["status"])
                changed = self._content(stored) != self._content(before)
                stored["metadata"].update(uid=before["metadata"]["uid"],
                                          generation=before["metadata"]["generation"] + int(changed))
                event = "MODIFIED"
            self._store(key, stored, event)

    def delete(self, name: str, namespace: str = "") -> None:
        """Delete an object from the test side (``DELETED`` with its last state at a new resourceVersion)."""
        with self._lock:
            gone = self._objects.pop((namespace, name))
            gone["metadata"]["resourceVersion"] = str(self._history.next_version())
            self._history.append_event(self.resource, "DELETED", gone)

    def get(self, name: str, namespace: str = "") -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._objects[(namespace, name)])

    def _store(self, key: tuple[str, str], obj: dict[str, Any], event: str) -> None:
        """Store ``obj`` at a new resourceVersion and announce it to watchers (the lock is held)."""
        obj["metadata"]["resourceVersion"] = str(self._history.next_version())
        self._objects[key] = obj
        self._history.append_event(self.resource, event, obj)

    def _content(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What bumps ``generation`` when it changes: everything but metadata (and status, with the subresource)."""
        ignored = {"metadata", "status"} if self.has_status else {"metadata"}
        return {k: v for k, v in obj.items() if k not in ignored}

    def _check_spec(self, obj: dict[str, Any]) -> None:
        """Prune the spec to the schema and refuse (``ValueError``) one the server would refuse."""
        schema = self._schema.get("properties", {}).get("spec")
        if schema is None or "spec" not in obj:
            return
        obj["spec"] = prune(obj["spec"], schema, "spec", [])
        problems: list[str] = []
        validate(obj["spec"], schema, "spec", problems)
        if problems:
            raise ValueError(f'{self.kind}.{self.group} "{obj["metadata"]["name"]}" is invalid: ' + "; ".join(problems))

    # --- HTTP -------------------------------------------------------------------------------------------

    def _stored(self, request: Request) -> tuple[tuple[str, str], dict[str, Any]]:
        key = (request.path_params.get("namespace", ""), request.path_params["name"])
        found = self._objects.get(key)
        if found is None:
            raise ApiError(404, "NotFound", f'{self.resource} "{key[1]}" not found')
        return key, found

    async def _list(self, request: Request) -> Response:
        params = request.query_params
        try:
            refuse_unknown_params(request, _LIST_PARAMS)
        except ApiError as exc:
            return error(exc)
        if params.get("watch") in {"true", "1"}:
            return self._history.stream_events(
                self.resource, self.kind, self.api_version, params.get("resourceVersion", ""),
                int(params.get("timeoutSeconds", "1800")), lambda: list(self._objects.values()))
        with self._lock:
            items = [copy.deepcopy(o) for o in self._objects.values()]
            version = self._history.current_version()
        return answer({"apiVersion": self.api_version, "kind": self.list_kind,
                       "metadata": {"resourceVersion": str(version)}, "items": items})

    async def _get(self, request: Request) -> Response:
        try:
            with self._lock:
                return answer(copy.deepcopy(self._stored(request)[1]))
        except ApiError as exc:
            return error(exc)

    async def _patch_status(self, request: Request) -> Response:
        try:
            refuse_unknown_params(request, _PATCH_PARAMS)
            validation = request.query_params.get("fieldValidation", "")
            if validation not in _VALIDATION:
                raise ApiError(400, "BadRequest", f"fieldValidation: invalid value {validation!r}")
            kind = content_type(request)
            if kind not in {JSON_PATCH, MERGE_PATCH}:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
                )
            patch = await json_body(request)
            with self._lock:
                key, stored = self._stored(request)
                patched = apply_json_patch(stored, patch) if kind == JSON_PATCH else apply_merge_patch(
                    stored, patch, strategic=False
                )
                if not isinstance(patched, dict):
                    raise ApiError(400, "BadRequest", "the patch must leave an object")
                wanted = (patched.get("metadata") or {}).get("resourceVersion")
                if wanted != stored["metadata"]["resourceVersion"]:
                    raise conflict(self.resource, key[1])
                unknown: list[str] = []
                status_schema = self._schema.get("properties", {}).get("status", {})
                new_status = prune(patched.get("status"), status_schema, "status", unknown)
                if unknown and validation == "Strict":
                    raise ApiError(400, "BadRequest", "; ".join(f'strict decoding error: unknown field "{u}"'
                                                              for u in unknown))
                problems: list[str] = []
                if new_status is not None:
                    validate(new_status, status_schema, "status", problems)
                if problems:
                    raise ApiError(422, "Invalid", f'{self.kind}.{self.group} "{key[1]}" is invalid: '
                                   + "; ".join(problems))
                headers = {"Warning": ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)} if (
                    unknown and validation in {"", "Warn"}
                ) else None
                if new_status == stored.get("status"):
                    return answer(copy.deepcopy(stored), headers=headers)
                updated = copy.deepcopy(stored)
                if new_status is None:
                    updated.pop("status", None)
                else:
                    updated["status"] = new_status
                self._store(key, updated, "MODIFIED")
                self.status_writes += 1
                return answer(copy.deepcopy(updated), headers=headers)
        except ApiError as exc:
            return error(exc)
