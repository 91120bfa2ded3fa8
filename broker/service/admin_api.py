"""The quota admin HTTP API: read, dry-run, apply and roll back policies, with bearer tokens and roles.

Routes (JSON in, JSON out; the OpenAPI document is served at ``/openapi.json``)::

    GET  /v1/policy                      viewer      the current version and policy
    GET  /v1/policy/history?limit=N      viewer      version, author, time, action and diff, newest first
    GET  /v1/policy/versions/{version}   viewer      one version with its policy
    POST /v1/policy/dry-run              viewer      what a policy would change (fields, runtime quota)
    POST /v1/runtime                     viewer      runtime quota of the current policy for a pool and demand
    PUT  /v1/policy                      team-owner  apply a whole policy on top of ``expectedVersion``
    POST /v1/policy/rollback             admin       restore an old version as a new one

Roles: ``admin`` may change anything; ``team-owner`` may change only groups strictly inside the subtrees it
owns (its own group's limits are what its parent grants, so they stay as an admin set them, and validation
keeps its children's mins within them); ``viewer`` reads. Every refused request gets a 4xx with a reason (401
no or bad token, 403 role, 404 unknown version, 409 stale ``expectedVersion`` or a policy managed elsewhere, 413
body too large, 415 not JSON, 400 malformed JSON, 422 invalid content naming the field), and 503 while the store
is unreachable; a request is applied whole or not at all.

A policy managed elsewhere: while a broker reads the policy from an ``ElasticQuotaPolicy`` object
(``policy_source.kind: kubernetes``), every write is refused with 409 ``managed`` naming the object, because
the broker would overwrite it at the object's next change (``PolicyOwner``). The service's own admin API knows
its configuration; other writers (``broker quota serve``, ``broker quota apply|rollback``) read the owner from
the author of the store's current version.

Tokens come from a YAML file of SHA-256 digests, never the tokens themselves (see ``docs/quota.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.errors import ConflictError, InputError, TemporaryPeerError
from broker.model import Resources, load, parse
from broker.quota import QuotaPolicy, compute_runtime_quota, diff_policies, policy_schema, read_demand
from broker.store import PolicyLog, PolicyRecord, Preview

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body accepted (a 1,000-group policy is about 300 KB of JSON)."""

MAX_HISTORY = 1000

_OWNER_AUTHOR = re.compile(r"^kubernetes:(?P<cluster>[a-z0-9]([a-z0-9-]*[a-z0-9])?)/(?P<name>[a-z0-9][-a-z0-9.]*)@")


@dataclass(frozen=True, slots=True)
class PolicyOwner:
    """The ``ElasticQuotaPolicy`` object (cluster-scoped, ``name`` in ``cluster``) a broker reads the policy from.

    Why a write is refused rather than taken: the broker applies the object's spec at its next change (and puts
    it back when the store drifts from it), so a write through the API or the CLI would be silently lost. Why the
    author is the marker: every version the broker writes from the object is signed ``author(resourceVersion)``
    (``kubernetes:<cluster>/<name>@<resourceVersion>``), written by the same compare-and-set as the policy itself,
    so the store's current version says by itself whether the policy is managed, with no second key to keep in
    step and on every kind of store. Until the broker has written a version (the object was invalid from the
    start, or already identical to the store), only the service's own admin API, which knows its configuration,
    refuses; the broker then puts back anything written meanwhile.
    """

    cluster: str
    name: str

    def author(self, resource_version: str) -> str:
        """The author of a version written from the object at ``resource_version``."""
        return f"kubernetes:{self.cluster}/{self.name}@{resource_version}"

    @classmethod
    def of(cls, record: PolicyRecord | None) -> PolicyOwner | None:
        """The owner that wrote ``record`` (the store's current version), or ``None`` for a person's version."""
        found = _OWNER_AUTHOR.match(record.author) if record is not None else None
        return cls(found["cluster"], found["name"]) if found is not None else None

    def refusal(self) -> str:
        """Why a write is refused, and where to make it instead."""
        return f"policy is managed by ElasticQuotaPolicy {self.name} on cluster {self.cluster}; edit it there"


class Role(StrEnum):
    """What a token may do; each role may do everything the roles after it may."""

    ADMIN = "admin"
    TEAM_OWNER = "team-owner"
    VIEWER = "viewer"


_RANK = {Role.VIEWER: 0, Role.TEAM_OWNER: 1, Role.ADMIN: 2}


class Token(BaseModel):
    """One API token: who holds it, the SHA-256 hex digest of the secret, its role and (team owners)
    subtrees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Role
    groups: tuple[str, ...] = Field((), description="Team owners: the groups whose subtrees they may edit.")


class Tokens(BaseModel):
    """The tokens file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: tuple[Token, ...] = Field(max_length=10_000)

    @classmethod
    def load(cls, path: Path) -> Tokens:
        """Read a tokens file; every team owner must name at least one group."""
        tokens = load(cls, path)
        for i, token in enumerate(tokens.tokens):
            if token.role is Role.TEAM_OWNER and not token.groups:
                raise InputError(f"{path}: tokens[{i}].groups", "a team-owner token must name its groups")
        return tokens

    def find(self, secret: str) -> Token | None:
        """The token whose digest matches ``secret`` (constant-time comparison)."""
        digest = hashlib.sha256(secret.encode()).hexdigest()
        found = None
        for token in self.tokens:
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ApplyRequest(_Body):
    """Apply ``policy`` (plain or custom-resource form) as the next version after ``expected_version``."""

    policy: dict[str, Any]
    expected_version: int = Field(ge=0)
    comment: str = Field("", max_length=1024)


class DryRunRequest(_Body):
    """Preview ``policy``; ``pool`` and ``demand`` default to the store's last observation."""

    policy: dict[str, Any]
    pool: Resources | None = None
    demand: dict[str, Any] | None = None


class RollbackRequest(_Body):
    """Restore ``version`` as a new version after ``expected_version``."""

    version: int = Field(ge=1)
    expected_version: int = Field(ge=0)


class RuntimeRequest(_Body):
    """Compute the current policy's runtime quota for ``pool`` and per-leaf ``demand``."""

    pool: Resources
    demand: dict[str, Any] = Field(default_factory=dict)


class ApiError(Exception):
    """A refused request: HTTP ``status`` and the reason sent back."""

    def __init__(self, status: int, error: str, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field


def _json(data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), status_code=status,
                    media_type="application/json", headers=headers)


def check_team_owner(token: Token, before: QuotaPolicy | None, after: QuotaPolicy) -> None:
    """Refuse (403) a change by a team owner that touches anything outside the subtrees it owns.

    A group may be added, changed or removed only if it lies strictly below an owned group in the policy it
    appears in (both, when it appears in both): so the owned groups themselves, their parents and their
    siblings stay exactly as the admin left them.
    """
    owned = set(token.groups)

    def inside(policy: QuotaPolicy | None, name: str) -> bool:
        if policy is None or name not in policy.tree.index:
            return True
        tree = policy.tree
        parent = tree.parent[tree.index[name]]
        while parent >= 0:
            if tree.names[parent] in owned:
                return True
            parent = tree.parent[parent]
        return False

    for change in diff_policies(before, after):
        if not (inside(before, change.group) and inside(after, change.group)):
            raise ApiError(403, "forbidden", f"group {change.group!r} is outside the subtrees of "
                                             f"{', '.join(sorted(owned))}; only an admin may change it",
                           field=f"groups[{change.group}]")


class AdminApi:
    """The routes over a ``PolicyLog`` and a set of tokens. ``owner``: the ``ElasticQuotaPolicy`` the serving
    broker reads the policy from, if any (writes are then refused; without it, the current version's author
    decides, see ``PolicyOwner``)."""

    def __init__(self, log: PolicyLog, tokens: Tokens, max_body_bytes: int = MAX_BODY_BYTES,
                 owner: PolicyOwner | None = None) -> None:
        self.log = log
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes
        self.owner = owner

    # --- plumbing ------------------------------------------------------------------------------------------

    def _auth(self, request: Request, role: Role) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
        token = self.tokens.find(secret.strip())
        if token is None:
            raise ApiError(401, "unauthorized", "unknown token")
        if _RANK[token.role] < _RANK[role]:
            raise ApiError(403, "forbidden", f"this needs the {role.value} role; token {token.name!r} is "
                                             f"{token.role.value}")
        return token

    async def _body(self, request: Request) -> Any:
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(415, "unsupported-media-type", f"send application/json, not {kind}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise ApiError(413, "too-large", f"body of {declared} bytes; the limit is {self.max_body_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ApiError(413, "too-large", f"body above the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed", f"body is not JSON: {exc}") from None

    def _handle(self, role: Role, handler: Callable[[Request, Token], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request, self._auth(request, role))
            except ApiError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                body = {"error": exc.error, "detail": exc.detail}
                if exc.field:
                    body["field"] = exc.field
                return _json(body, exc.status, headers)
            except InputError as exc:
                return _json({"error": "invalid", "field": exc.field, "detail": exc.message}, 422)
            except ConflictError as exc:
                return _json({"error": "conflict", "detail": str(exc), "expected": exc.expected,
                              "current": exc.actual}, 409)
            except TemporaryPeerError as exc:
                # The store (Redis) is down or slow: not the client's fault, worth retrying shortly.
                return _json({"error": "unavailable", "detail": str(exc)}, 503,
                             {"Retry-After": str(max(1, round(exc.delay_s)))})

        return endpoint

    def _refuse_if_managed(self) -> None:
        """409 while an ``ElasticQuotaPolicy`` is the policy's source (``PolicyOwner``)."""
        owner = self.owner or PolicyOwner.of(self.log.current())
        if owner is not None:
            raise ApiError(409, "managed", owner.refusal())

    # --- handlers -----------------------------------------------------------------------------------------

    async def get_policy(self, request: Request, token: Token) -> Response:
        record = self.log.current()
        if record is None:
            return _json({"version": 0, "policy": None})
        return _json(_record(record))

    async def get_history(self, request: Request, token: Token) -> Response:
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_HISTORY:
            raise InputError("limit", f"expected an integer from 1 to {MAX_HISTORY}, got {raw!r}")
        return _json({"versions": [r.summary() for r in self.log.store.history(int(raw))]})

    async def get_version(self, request: Request, token: Token) -> Response:
        raw = request.path_params["version"]
        if not raw.isdigit() or int(raw) < 1:
            raise InputError("version", f"expected a version number >= 1, got {raw!r}")
        record = self.log.store.get(int(raw))
        if record is None:
            raise ApiError(404, "not-found", f"no version {raw}; the head is {self.log.store.head()}")
        return _json(_record(record))

    async def dry_run(self, request: Request, token: Token) -> Response:
        body = parse(DryRunRequest, await self._body(request))
        policy = QuotaPolicy.from_document(body.policy, "policy")
        demand = read_demand({"demand": body.demand}, "") if body.demand is not None else None
        return _json(_preview(self.log.preview(policy, body.pool, demand)))

    async def runtime(self, request: Request, token: Token) -> Response:
        body = parse(RuntimeRequest, await self._body(request))
        record = self.log.current()
        if record is None:
            raise ApiError(404, "not-found", "no policy has been applied yet")
        demand = read_demand({"demand": body.demand})
        return _json({"version": record.version,
                      **compute_runtime_quota(record.policy, body.pool, demand).for_storage()})

    async def apply(self, request: Request, token: Token) -> Response:
        body = parse(ApplyRequest, await self._body(request))
        self._refuse_if_managed()
        policy = QuotaPolicy.from_document(body.policy, "policy")
        if token.role is Role.TEAM_OWNER:
            current = self.log.current()
            if (current.version if current else 0) != body.expected_version:
                raise ConflictError(body.expected_version, current.version if current else 0)
            check_team_owner(token, current.policy if current else None, policy)
        outcome = self.log.apply(policy, token.name, body.expected_version, body.comment)
        return _json({"written": outcome.written, **_record(outcome.record)}, 201 if outcome.written else 200)

    async def rollback(self, request: Request, token: Token) -> Response:
        body = parse(RollbackRequest, await self._body(request))
        self._refuse_if_managed()
        outcome = self.log.rollback(body.version, token.name, body.expected_version)
        return _json({"written": outcome.written, **_record(outcome.record)}, 201 if outcome.written else 200)

    async def openapi(self, request: Request) -> Response:
        return _json(openapi_document())

    def app(self) -> Starlette:
        """The Starlette application."""
        return Starlette(routes=[
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/policy", self._handle(Role.VIEWER, self.get_policy), methods=["GET"]),
            Route("/v1/policy", self._handle(Role.TEAM_OWNER, self.apply), methods=["PUT"]),
            Route("/v1/policy/history", self._handle(Role.VIEWER, self.get_history), methods=["GET"]),
            Route("/v1/policy/versions/{version}", self._handle(Role.VIEWER, self.get_version),
                  methods=["GET"]),
            Route("/v1/policy/dry-run", self._handle(Role.VIEWER, self.dry_run), methods=["POST"]),
            Route("/v1/policy/rollback", self._handle(Role.ADMIN, self.rollback), methods=["POST"]),
            Route("/v1/runtime", self._handle(Role.VIEWER, self.runtime), methods=["POST"]),
        ])


def _record(record: PolicyRecord) -> dict[str, Any]:
    return {**record.summary(), "policy": record.policy.for_storage()}


def _preview(preview: Preview) -> dict[str, Any]:
    return {
        "baseVersion": preview.base_version,
        "changes": [c.line() for c in preview.changes],
        "runtime": {c.group: c.for_storage() for c in preview.runtime},
    }


def create_app(log: PolicyLog, tokens: Tokens, max_body_bytes: int = MAX_BODY_BYTES,
               owner: PolicyOwner | None = None) -> Starlette:
    """The admin API application over ``log`` with ``tokens`` (``owner``: see ``AdminApi``)."""
    return AdminApi(log, tokens, max_body_bytes, owner).app()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the admin API (request schemas from the models and the policy
    schema)."""
    def body(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        if "policy" in schema.get("properties", {}):
            schema["properties"]["policy"] = {"$ref": "#/components/schemas/QuotaPolicy"}
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    error = {"description": "Refused; the body says why",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    refusals = {str(code): error for code in (400, 401, 403, 404, 409, 413, 415, 422, 503)}

    def op(summary: str, role: Role, request: type[BaseModel] | None = None,
           params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": summary, "description": f"Needs the {role.value} role or above.",
                               "security": [{"bearer": []}],
                               "responses": {"200": {"description": "OK"}, **refusals}}
        if request is not None:
            out["requestBody"] = body(request)
        if params:
            out["parameters"] = params
        return out

    return {
        "openapi": "3.1.0",
        "info": {"title": "broker quota admin API", "version": "1",
                 "description": "Versioned elastic quota policies: read, dry-run, apply, roll back."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "QuotaPolicy": policy_schema(),
                "Error": {"type": "object", "required": ["error", "detail"],
                          "properties": {"error": {"type": "string"}, "detail": {"type": "string"},
                                         "field": {"type": "string"}}},
            },
        },
        "paths": {
            "/v1/policy": {
                "get": op("The current version and policy", Role.VIEWER),
                "put": op("Apply a whole policy as the next version (201 written, 200 unchanged)",
                          Role.TEAM_OWNER, ApplyRequest),
            },
            "/v1/policy/history": {"get": op("Versions, newest first", Role.VIEWER, params=[
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                            "maximum": MAX_HISTORY}}])},
            "/v1/policy/versions/{version}": {"get": op("One version", Role.VIEWER, params=[
                {"name": "version", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1}}])},
            "/v1/policy/dry-run": {"post": op("What a policy would change", Role.VIEWER, DryRunRequest)},
            "/v1/policy/rollback": {"post": op("Restore an old version as new", Role.ADMIN, RollbackRequest)},
            "/v1/runtime": {"post": op("Runtime quota of the current policy", Role.VIEWER, RuntimeRequest)},
        },
    }


__all__ = ["MAX_BODY_BYTES", "AdminApi", "PolicyOwner", "Role", "Token", "Tokens", "check_team_owner",
           "create_app", "openapi_document"]
