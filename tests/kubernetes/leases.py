"""``coordination.k8s.io/v1`` Leases, as kube-apiserver serves them.

- ``POST /apis/coordination.k8s.io/v1/namespaces/{ns}/leases`` creates (409 ``AlreadyExists`` when the name is
  taken; ``metadata.name`` is required, a body namespace must match the URL's);
- ``GET .../leases/{name}`` reads (404 ``NotFound``);
- ``PUT .../leases/{name}`` replaces: the body's name must be the URL's (400); a ``metadata.resourceVersion``
  other than the stored one is a 409 ``Conflict`` (optimistic concurrency: someone else wrote first); without
  one the update is unconditional, as the Lease strategy allows; a missing Lease is 404 (no create on update).

``spec.acquireTime`` and ``spec.renewTime`` are ``MicroTime``: the JSON decoder demands exactly six fractional
digits (400 otherwise, before validation), and they are stored in UTC. Validation (422 ``Invalid``):
``leaseDurationSeconds`` and ``leaseTransitions`` integers, the first > 0 and the second >= 0 when set,
``holderIdentity`` a string. Every write sets a new ``resourceVersion``; ``uid`` and ``creationTimestamp`` are the
server's.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .wire import ApiError, answer, conflict, error, json_body, micro_time, now_rfc3339, refuse_unknown_params

_BASE = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_RESOURCE = "leases.coordination.k8s.io"
_WRITE_PARAMS = frozenset({"fieldManager", "fieldValidation", "dryRun", "pretty"})


class Leases:
    """The Leases of every namespace; ``writes`` counts accepted creates and updates."""

    def __init__(self, lock: threading.RLock, next_version: Callable[[], int]) -> None:
        self._lock = lock
        self._next_version = next_version
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes = 0

    def routes(self) -> list[Route]:
        return [
            Route(_BASE, self._create, methods=["POST"]),
            Route(_BASE + "/{name}", self._get, methods=["GET"]),
            Route(_BASE + "/{name}", self._replace, methods=["PUT"]),
        ]

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The stored Lease, for assertions."""
        with self._lock:
            return copy.deepcopy(self._objects[(namespace, name)])

    def delete(self, namespace: str, name: str) -> None:
        """Remove a Lease from the test side (an operator's ``kubectl delete lease``): its history goes with it,
        so a Lease created again starts at ``leaseTransitions`` 0."""
        with self._lock:
            del self._objects[(namespace, name)]

    # --- HTTP -------------------------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        try:
            refuse_unknown_params(request, _WRITE_PARAMS)
            body = self._checked(await json_body(request), namespace)
            name = body["metadata"].get("name")
            if not isinstance(name, str) or not name:
                raise ApiError(422, "Invalid", "Lease.coordination.k8s.io is invalid: metadata.name: Required value")
            with self._lock:
                if (namespace, name) in self._objects:
                    raise ApiError(409, "AlreadyExists", f'{_RESOURCE} "{name}" already exists')
                meta = {"uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
                return answer(self._store(namespace, name, body, meta), 201)
        except ApiError as exc:
            return error(exc)

    async def _get(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        with self._lock:
            found = self._objects.get((namespace, name))
            if found is None:
                return error(ApiError(404, "NotFound", f'{_RESOURCE} "{name}" not found'))
            return answer(copy.deepcopy(found))

    async def _replace(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        try:
            refuse_unknown_params(request, _WRITE_PARAMS)
            body = self._checked(await json_body(request), namespace)
            if body["metadata"].get("name") != name:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the name of the object ({body['metadata'].get('name')}) does not match the name on the "
                    f"URL ({name})",
                )
            with self._lock:
                stored = self._objects.get((namespace, name))
                if stored is None:
                    raise ApiError(404, "NotFound", f'{_RESOURCE} "{name}" not found')
                version = body["metadata"].get("resourceVersion")
                if version and version != stored["metadata"]["resourceVersion"]:
                    raise conflict(_RESOURCE, name)
                meta = {k: stored["metadata"][k] for k in ("uid", "creationTimestamp")}
                return answer(self._store(namespace, name, body, meta))
        except ApiError as exc:
            return error(exc)

    def _store(self, namespace: str, name: str, body: dict[str, Any], server_meta: dict[str, str]) -> Any:
        metadata = {
            **{k: v for k, v in body["metadata"].items() if k in {"labels", "annotations"}},
            "name": name,
            "namespace": namespace,
            **server_meta,
            "resourceVersion": str(self._next_version()),
        }
        lease = {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": metadata,
                 "spec": body["spec"]}
        self._objects[(namespace, name)] = lease
        self.writes += 1
        return copy.deepcopy(lease)

    @staticmethod
    def _checked(body: Any, namespace: str) -> dict[str, Any]:
        """Decode (400) then validate (422) a Lease body; returns it with its spec in stored form."""
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "Lease in version \"v1\" cannot be handled as a Lease")
        if body.get("kind", "Lease") != "Lease" or body.get("apiVersion", "coordination.k8s.io/v1") != (
            "coordination.k8s.io/v1"
        ):
            raise ApiError(400, "BadRequest", f"expected Lease coordination.k8s.io/v1, got {body.get('kind')}")
        metadata = dict(body.get("metadata") or {})
        if metadata.get("namespace", namespace) != namespace:
            raise ApiError(
                400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        spec = dict(body.get("spec") or {})
        for field in ("acquireTime", "renewTime"):
            if spec.get(field) is not None:
                spec[field] = micro_time(spec[field], f"spec.{field}", "Lease")
        problems = []
        for field, least in (("leaseDurationSeconds", 1), ("leaseTransitions", 0)):
            value = spec.get(field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ApiError(400, "BadRequest", f"spec.{field}: expected an integer, got {value!r}")
            if value < least:
                relation = "greater than 0" if least else "greater than or equal to 0"
                problems.append(f"spec.{field}: Invalid value: {value}: must be {relation}")
        if spec.get("holderIdentity") is not None and not isinstance(spec["holderIdentity"], str):
            raise ApiError(400, "BadRequest", "spec.holderIdentity: expected a string")
        if problems:
            raise ApiError(422, "Invalid", f'Lease.coordination.k8s.io is invalid: {"; ".join(problems)}')
        known = {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions"}
        return {"metadata": metadata, "spec": {k: v for k, v in spec.items() if k in known and v is not None}}
