"""The Kubernetes client's failures as the broker's error tree (the core never sees an HTTP status)."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from broker.errors import PeerError, PermanentPeerError, TemporaryPeerError

_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})


def peer_error(peer: str, exc: Exception) -> PeerError:
    """``exc`` from a call to the API server ``peer``: a refusal (4xx other than conflicts and throttling) is
    permanent, the rest (5xx, 429, 409, connection failures) is worth retrying."""
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) else None
        message = f"{status} {exc.reason}".strip() if status is not None else str(exc.reason)
        if status is not None and 400 <= status < 500 and status not in _RETRYABLE:
            return PermanentPeerError(peer, message, status)
        return TemporaryPeerError(peer, message)
    return TemporaryPeerError(peer, f"{type(exc).__name__}: {exc}")


__all__ = ["peer_error"]
