"""The Kubernetes client's failures as the broker's error tree (the core never sees an HTTP status)."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from broker.errors import PeerError, PermanentPeerError, TemporaryPeerError

_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})


def _status_message(body: object) -> str:
    """The ``message`` of a ``Status`` answer body (what the server says is wrong), or ``""``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return ""
    try:
        decoded = json.loads(body)
    except ValueError:
        return ""
    message = decoded.get("message") if isinstance(decoded, dict) else None
    return message if isinstance(message, str) else ""


def peer_error(peer: str, exc: Exception) -> PeerError:
    """``exc`` from a call to the API server ``peer``, with the server's own explanation: a refusal (4xx
    other than conflicts and throttling) is permanent, the rest (5xx, 429, 409, connection failures) is worth
    retrying."""
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) else None
        message = f"{status} {exc.reason}".strip() if status is not None else str(exc.reason)
        detail = _status_message(exc.body)
        if detail:
            message = f"{message}: {detail}"
        if status is not None and 400 <= status < 500 and status not in _RETRYABLE:
            return PermanentPeerError(peer, message, status)
        return TemporaryPeerError(peer, message)
    return TemporaryPeerError(peer, f"{type(exc).__name__}: {exc}")


__all__ = ["peer_error"]
