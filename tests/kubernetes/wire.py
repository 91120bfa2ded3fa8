"""What every endpoint of the stand-in API server shares: ``Status`` errors, quantities, patches, times.

These follow kube-apiserver (``k8s.io/apimachinery``): a failure is a ``Status`` object with ``code``,
``reason`` and ``message``; quantities are stored in canonical form; JSON patches (RFC 6902) and merge patches
(RFC 7386) apply as the server applies them; ``MicroTime`` (a Lease's ``acquireTime`` and ``renewTime``) is
parsed with the layout ``2006-01-02T15:04:05.000000Z07:00``, which demands exactly six fractional digits, and
written back in UTC with a ``Z``.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
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


_MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
MICRO_TIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"


def micro_time(value: Any, field: str, kind: str) -> str:
    """``value`` as the server stores a ``MicroTime`` (UTC, six digits, ``Z``), or the 400 the server answers
    when the JSON decoder cannot parse it (before any validation runs)."""
    if not isinstance(value, str) or _MICRO_TIME.match(value) is None:
        raise ApiError(
            400,
            "BadRequest",
            f'{kind} in version "v1" cannot be handled as a {kind}: {field}: parsing time {value!r} as '
            f'"{MICRO_TIME_LAYOUT}": cannot parse',
        )
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    """``metav1.Time`` now, as the server writes ``creationTimestamp`` (seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(body: Any, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), code, headers=headers, media_type="application/json")


def error(exc: ApiError) -> Response:
    return answer(status(exc.code, exc.reason, exc.message), exc.code)


async def json_body(request: Request) -> Any:
    """The request body as JSON, or the server's 400 for a body it cannot decode."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ApiError(400, "BadRequest", "unable to decode the request body: invalid JSON") from None


def refuse_unknown_params(request: Request, known: frozenset[str]) -> None:
    """A 400 naming query parameters the stand-in does not model, so no test passes against behaviour the
    stand-in does not have."""
    unknown = set(request.query_params) - known
    if unknown:
        raise ApiError(400, "BadRequest", f"not modelled by the stand-in: {sorted(unknown)}")


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


def conflict(resource: str, name: str) -> ApiError:
    """The 409 an update answers when its ``metadata.resourceVersion`` is not the stored one."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; please apply '
        "your changes to the latest version and try again",
    )
