"""The stand-in API server of ``tests/kubernetes`` with what a node agent's pod watch needs, as kube-apiserver does
it:

- ``labelSelector`` on pod lists and watches: comma-separated requirements, all of which must hold: ``k=v``,
  ``k==v``, ``k!=v`` (true when ``k`` is absent), ``k in (a,b)``, ``k notin (a,b)`` (true when absent), ``k``,
  ``!k``; ``k>n`` / ``k<n`` are not modelled (400 naming them); anything else is the server's 400 ``unable to parse
  requirement``;
- ``fieldSelector`` on pod watches as well as lists (the same fields as the base stand-in);
- a watch with selectors sends what the API server's watch cache sends (``cacher.go``, ``convertToWatchEvent``):
  an object that starts matching comes as ``ADDED``, a change to a matching object as ``MODIFIED``, an object that
  stops matching (or is deleted) as ``DELETED`` with its previous content at the event's resourceVersion, and the
  rest not at all;
- bearer tokens and RBAC on ``/api/v1/pods``: no or an unknown token is 401 ``Unauthorized``; a known token whose
  user may not ``list`` (or, for a watch, ``watch``) pods is 403 ``Forbidden`` with the server's message. Checked
  before anything else, as authentication and authorisation run before the handler.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.kubernetes.kube_apiserver import _LIST_PARAMS, _SELECTABLE, StandInApiServer, _field_selector
from tests.kubernetes.wire import ApiError, answer, error, refuse_unknown_params, status

_PARAMS = _LIST_PARAMS | {"labelSelector"}
_SET = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")
_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Identity:
    """Who a token is, and what it may do to pods cluster-wide (RBAC verbs)."""

    user: str
    verbs: frozenset[str] = field(default_factory=lambda: frozenset({"list", "watch"}))


def label_selector(selector: str) -> Predicate:
    """A predicate on an object's ``metadata.labels`` for ``selector``, or the 400 the server answers."""
    checks = [_requirement(text) for text in _split(selector) if text.strip()]
    return lambda obj: all(check(obj.get("metadata", {}).get("labels") or {}) for check in checks)


def _split(selector: str) -> list[str]:
    parts: list[str] = []
    depth = start = 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if re.search(r"[<>]", text):
        raise ApiError(400, "BadRequest", f"not modelled by the stand-in: {text.strip()!r}")
    found = _SET.match(text)
    if found:
        key, operator = found.group(1), found.group(2)
        values = {v.strip() for v in found.group(3).split(",")}
        _check(text, key, *values)
        if operator == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: labels.get(key) not in values
    for operator in ("!=", "==", "="):
        key, present, value = text.partition(operator)
        if present:
            key, value = key.strip(), value.strip()
            _check(text, key, value)
            if operator == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: key in labels and labels[key] == value
    key = text.strip()
    if key.startswith("!"):
        key = key[1:].strip()
        _check(text, key)
        return lambda labels: key not in labels
    _check(text, key)
    return lambda labels: key in labels


def _check(text: str, key: str, *values: str) -> None:
    if not _NAME.match(key) or not all(_VALUE.match(v) for v in values):
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {text.strip()!r}")


class PodsApiServer(StandInApiServer):
    """The stand-in with label selectors, selector watches and RBAC on pods (see the module docstring).
    ``tokens``: bearer token -> identity; ``None`` serves without authentication, as the base stand-in does."""

    def __init__(self, tokens: dict[str, Identity] | None = None) -> None:
        self.tokens = tokens
        self._previous: dict[int, dict[str, Any] | None] = {}
        super().__init__()

    # Every change remembers the object it replaced, which is what a selector watch filters on.
    def _record(self, collection: str, kind: str, key: str, obj: dict[str, Any]) -> None:
        previous = copy.deepcopy(self._objects[collection].get(key))
        super()._record(collection, kind, key, obj)
        self._previous[self._version] = previous

    def delete(self, collection: str, key: str) -> None:
        with self._lock:
            previous = copy.deepcopy(self._objects[collection][key])
            super().delete(collection, key)
            self._previous[self._version] = previous

    def _collection(self, collection: str) -> Callable[[Request], Any]:
        if collection != "pods":
            return super()._collection(collection)

        async def endpoint(request: Request) -> Response:
            params = request.query_params
            watching = params.get("watch") in {"true", "1"}
            try:
                self._authorize(request, "watch" if watching else "list")
                refuse_unknown_params(request, _PARAMS)
                fields = _field_selector(params.get("fieldSelector", ""), _SELECTABLE["pods"])
                labels = label_selector(params.get("labelSelector", ""))
            except ApiError as exc:
                return error(exc)

            def matches(obj: dict[str, Any]) -> bool:
                return fields(obj) and labels(obj)

            if watching:
                return self._watch_selected(matches, params.get("resourceVersion", ""),
                                            int(params.get("timeoutSeconds", "1800")))
            with self._lock:
                items = [copy.deepcopy(o) for o in self._objects["pods"].values() if matches(o)]
                version = self._version
            return answer({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(version)},
                           "items": items})

        return endpoint

    def _authorize(self, request: Request, verb: str) -> None:
        if self.tokens is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        identity = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if identity is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if verb not in identity.verbs:
            raise ApiError(403, "Forbidden", f'pods is forbidden: User "{identity.user}" cannot {verb} resource '
                           '"pods" in API group "" at the cluster scope')

    def _watch_selected(self, matches: Predicate, since: str, timeout_s: int) -> Response:
        def line(event_type: str, obj: dict[str, Any]) -> bytes:
            return orjson.dumps({"type": event_type, "object": {"kind": "Pod", "apiVersion": "v1", **obj}}) + b"\n"

        async def events() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout_s
            with self._lock:
                generation = self._generation
                fresh = not since or since == "0"
                expired = not fresh and int(since) < self._oldest
                oldest = self._oldest
            if expired:
                gone = status(410, "Expired", f"too old resource version: {since} ({oldest})")
                yield orjson.dumps({"type": "ERROR", "object": gone}) + b"\n"
                return
            with self._lock:
                sent = self._version if fresh else int(since)
                initial = [copy.deepcopy(o) for o in self._objects["pods"].values() if fresh and matches(o)]
            for obj in initial:
                yield line("ADDED", obj)
            while time.monotonic() < deadline:
                with self._lock:
                    if self._generation != generation:
                        return
                    pending = [(e.version, e.kind, e.obj, self._previous.get(e.version)) for e in self._history
                               if e.version > sent and e.collection == "pods"]
                for version, kind, obj, previous in pending:
                    converted = _converted(version, kind, obj, previous, matches)
                    if converted is not None:
                        yield line(*converted)
                    sent = version
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="application/json")


def _converted(version: int, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None,
               matches: Predicate) -> tuple[str, dict[str, Any]] | None:
    """What a selector watch sends for one change (``convertToWatchEvent``), ``None`` for nothing."""
    now = kind != "DELETED" and matches(obj)
    before = previous is not None and matches(previous)
    if now:
        return ("MODIFIED" if before else "ADDED"), obj
    if before and previous is not None:
        gone = copy.deepcopy(previous)
        gone["metadata"]["resourceVersion"] = str(version)
        return "DELETED", gone
    return None


def pod(name: str, node: str, uid: str, labels: dict[str, str] | None = None,
        namespace: str = "batch") -> dict[str, Any]:
    """A pod bound to ``node`` with ``labels`` (and a container, so that the official client can read it)."""
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "registry.invalid/job:1"}]},
        "status": {"phase": "Running"},
    }
