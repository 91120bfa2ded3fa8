"""The extender's HTTP face: a Starlette (ASGI) app with the extender verbs, health, readiness and metrics.

``POST <prefix>/filter``, ``/prioritize``, ``/preempt``, ``/bind`` take the scheduler's JSON and answer 200
with the extender types, or a 4xx with ``{"Error": "<field>: <message>"}``: 400 for a malformed body, 413 for
one larger than the limit (checked against ``Content-Length`` before reading, and again while reading a
chunked body), 415 for a declared content type that is not JSON. ``GET /healthz`` answers while the process
serves; ``GET /readyz`` only while the plan is usable (503 with the reason otherwise), so that a Service sends
the scheduler to replicas that have a plan. ``GET /metrics`` is the Prometheus exposition.

A background task follows the plan source for the app's lifetime: each update's tables are built (and a plan
document validated) off the event loop and swapped in on it; a plan that fails to load is reported and the
previous one stays in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from broker.errors import InputError
from broker.model.plan import Plan
from broker.service.extender.extender import Extender, Verb
from broker.service.extender.plan_document import tables_from_document
from broker.service.extender.plan_source import PlanSource
from broker.service.extender.tables import build_tables
from broker.service.extender.wire import write_error

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted: a filter over 2,000 full Node objects (``nodeCacheCapable: false``)."""

_JSON = "application/json"
_JSON_BYTES = _JSON.encode()
_JSON_HEADERS = [(b"content-type", _JSON_BYTES)]


class _VerbEndpoint:
    """One extender verb as a bare ASGI app behind its Starlette route.

    The verbs are the hot path: a Starlette ``Request``/``Response`` pair and its exception wrapper cost about
    50 microseconds a request, a sixth of a 500-name prioritize, so the endpoint reads the body from
    ``receive`` and answers with two ``send`` calls itself. Routing, 405s and the other endpoints stay
    Starlette's.
    """

    def __init__(self, extender: Extender, verb: Verb, max_body_bytes: int) -> None:
        self.extender = extender
        self.verb = verb
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type")
        if content_type is not None and not content_type.lower().startswith(_JSON_BYTES):
            declared_type = content_type.decode("latin-1")
            await _answer(send, 415, write_error(f"content type must be {_JSON}, got {declared_type}"))
            return
        body = await self._body(headers.get(b"content-length"), receive)
        if body is None:
            self.extender.metrics.requests.labels(self.verb.value, "bad_request").inc()
            await _answer(send, 413, write_error(f"body larger than {self.max_body_bytes} bytes"))
            return
        verb = self.verb
        tables = self.extender.tables  # handle() runs without yielding: the tables it answers from (bind: at arrival)
        reply = await self.extender.bind(body) if verb is Verb.BIND else self.extender.handle(verb, body)
        await _answer(send, reply.status, reply.body, tables.version if tables is not None else None)

    async def _body(self, declared: bytes | None, receive: Receive) -> bytes | None:
        """The request body, or ``None`` once it is known to be over the limit (declared, or while read)."""
        limit = self.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, plan_version: int | None = None) -> None:
    """Send the answer; ``X-Broker-Plan-Version`` names the plan it was computed on (for operators comparing
    replicas, and for the load test's staleness check)."""
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if plan_version is not None:
        headers.append((b"x-broker-plan-version", str(plan_version).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def follow_plans(extender: Extender, source: PlanSource) -> None:
    """Install every plan ``source`` yields, forever; failures are reported, never fatal."""
    async for update in source.updates():
        if isinstance(update, InputError):
            log.warning("plan from %s not used: %s", source.describe(), update)
            extender.record_load_error(update)
            continue
        try:
            if isinstance(update, Plan):
                tables = await asyncio.to_thread(build_tables, update, extender.config.cluster)
            else:
                tables = await asyncio.to_thread(tables_from_document, update, extender.config.cluster)
            extender.install_tables(tables)
        except InputError as exc:
            log.warning("plan from %s not used: %s", source.describe(), exc)
            extender.record_load_error(exc)
        else:
            log.info("plan v%d from %s in use (%d nodes)", tables.version, source.describe(),
                     len(tables.nodes))


def create_app(extender: Extender, source: PlanSource | None = None, url_prefix: str = "",
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The ASGI app serving ``extender``; with ``source``, plans are followed while the app runs."""
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    prefix = url_prefix.rstrip("/")

    def verb_route(verb: Verb) -> Route:
        endpoint = _VerbEndpoint(extender, verb, max_body_bytes)
        return Route(f"{prefix}/{verb.value}", endpoint, methods=["POST"], name=verb.value)

    async def healthz(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    async def readyz(request: Request) -> Response:
        problem = extender.plan_problem()
        tables = extender.tables
        if problem or tables is None:
            return Response(write_error(problem), 503, media_type=_JSON)
        return Response(orjson.dumps({"plan_version": tables.version, "nodes": len(tables.nodes),
                                      "last_load_error": extender.last_load_error}), media_type=_JSON)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(extender.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(follow_plans(extender, source)) if source is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [verb_route(verb) for verb in Verb]
    routes += [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    return Starlette(routes=routes, lifespan=lifespan)


__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "follow_plans"]
